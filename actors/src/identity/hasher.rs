//! bcrypt, on the blocking pool: a cost-12 hash takes a quarter of a second of CPU and
//! would stall every request sharing an async worker thread. At most `threads` hashes
//! run at once (the others queue), so a flood of sign-ups or logins cannot take every
//! core from checkout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};

use crate::error::Error;
use crate::identity::Password;

#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// A hash of a random password at the same cost, verified against when the email is
    /// unknown so that login takes as long whether or not the account exists.
    decoy: Arc<OnceCell<String>>,
    permits: Arc<Semaphore>,
    running: Arc<Running>,
}

/// Hashes running now, and the most seen at once.
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl PasswordHasher {
    /// `threads`: how many hashes may run at once (at least one).
    pub fn new(cost: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            cost,
            decoy: Arc::new(OnceCell::new()),
            permits: Arc::new(Semaphore::new(threads)),
            running: Arc::default(),
        }
    }

    /// The most hashes that ran at once so far.
    pub fn most_at_once(&self) -> usize {
        self.running.most.load(Ordering::SeqCst)
    }

    /// Runs one bcrypt operation once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let running = Arc::clone(&self.running);
        tokio::task::spawn_blocking(move || {
            let now = running.now.fetch_add(1, Ordering::SeqCst) + 1;
            running.most.fetch_max(now, Ordering::SeqCst);
            let outcome = work();
            running.now.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
        .await
        .map_err(Error::internal)
    }

    #[tracing::instrument(name = "password_hash", skip_all)]
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost))
            .await?
            .map_err(Error::internal)
    }

    /// `false` for a wrong password or an unreadable hash.
    #[tracing::instrument(name = "password_verify", skip_all)]
    pub async fn verify(&self, candidate: &str, hash: &str) -> Result<bool, Error> {
        let candidate = candidate.to_owned();
        let hash = hash.to_owned();
        self.run(move || bcrypt::verify(candidate, &hash).unwrap_or(false))
            .await
    }

    /// Spends the time a real verification would, for an account that does not exist.
    pub async fn verify_decoy(&self, candidate: &str) -> Result<(), Error> {
        let cost = self.cost;
        let decoy = self
            .decoy
            .get_or_try_init(|| async move {
                let random = crate::identity::secret_token::generate();
                self.run(move || bcrypt::hash(random, cost))
                    .await?
                    .map_err(Error::internal)
            })
            .await?
            .clone();
        self.verify(candidate, &decoy).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_the_pool_allows() {
        let hasher = PasswordHasher::new(4, 1);
        let password = Password::parse("correct horse battery").unwrap();
        let hashes: Vec<_> = (0..6)
            .map(|_| {
                let hasher = hasher.clone();
                let password = password.clone();
                tokio::spawn(async move { hasher.hash(&password).await })
            })
            .collect();
        for hash in hashes {
            let hash = hash.await.unwrap().unwrap();
            assert!(hasher.verify("correct horse battery", &hash).await.unwrap());
        }
        assert_eq!(hasher.most_at_once(), 1);

        let wide = PasswordHasher::new(4, 3);
        let hashes: Vec<_> = (0..12)
            .map(|_| {
                let hasher = wide.clone();
                let password = password.clone();
                tokio::spawn(async move { hasher.hash(&password).await })
            })
            .collect();
        for hash in hashes {
            hash.await.unwrap().unwrap();
        }
        assert!(wide.most_at_once() <= 3);
    }
}
