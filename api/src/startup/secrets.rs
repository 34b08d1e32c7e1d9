//! The JWT signing key of a node: configured, read from a file, or generated once into
//! the embedded data directory.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;

/// The JWT signing key: configured, read from a file, or — embedded mode only —
/// generated once and kept in the data directory.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt.secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    if let Some(path) = &config.jwt.secret_file {
        let secret = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read jwt_secret_file (SOUK_JWT_SECRET_FILE) {}",
                path.display()
            )
        })?;
        let secret = secret.trim();
        anyhow::ensure!(secret.len() >= 32, "invalid configuration: jwt_secret_file (SOUK_JWT_SECRET_FILE): the secret must be at least 32 bytes");
        return Ok(secret.as_bytes().to_vec());
    }
    anyhow::ensure!(
        config.is_embedded(),
        "invalid configuration: jwt_secret (SOUK_JWT_SECRET): set SOUK_JWT_SECRET or SOUK_JWT_SECRET_FILE when the database is not the embedded SQLite"
    );
    embedded_jwt_secret(&config.node.data_dir.join("jwt-secret"))
}

fn embedded_jwt_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let secret = format!(
        "{}{}",
        souk_actors::identity::secret_token::generate(),
        souk_actors::identity::secret_token::generate()
    );
    write_private(path, &secret)
        .with_context(|| format!("cannot write the generated JWT key to {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a JWT signing key for embedded mode; set SOUK_JWT_SECRET or SOUK_JWT_SECRET_FILE in production"
    );
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
