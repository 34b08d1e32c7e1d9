//! bcrypt, on the blocking pool: a cost-12 hash takes a quarter of a second of CPU and
//! would stall every request sharing an async worker thread.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::error::Error;
use crate::identity::Password;

#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// A hash of a random password at the same cost, verified against when the email is
    /// unknown so that login takes as long whether or not the account exists.
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        Self {
            cost,
            decoy: Arc::new(OnceCell::new()),
        }
    }

    #[tracing::instrument(name = "password_hash", skip_all)]
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }

    /// `false` for a wrong password or an unreadable hash.
    #[tracing::instrument(name = "password_verify", skip_all)]
    pub async fn verify(&self, candidate: &str, hash: &str) -> Result<bool, Error> {
        let candidate = candidate.to_owned();
        let hash = hash.to_owned();
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(candidate, &hash).unwrap_or(false))
                .await
                .map_err(Error::internal)?;
        Ok(verified)
    }

    /// Spends the time a real verification would, for an account that does not exist.
    pub async fn verify_decoy(&self, candidate: &str) -> Result<(), Error> {
        let cost = self.cost;
        let decoy = self
            .decoy
            .get_or_try_init(|| async move {
                let random = crate::identity::secret_token::generate();
                tokio::task::spawn_blocking(move || bcrypt::hash(random, cost))
                    .await
                    .map_err(Error::internal)?
                    .map_err(Error::internal)
            })
            .await?
            .clone();
        self.verify(candidate, &decoy).await?;
        Ok(())
    }
}
