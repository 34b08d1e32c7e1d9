//! Values that must never be shown: a [`Secret`] prints a placeholder in `Debug` and
//! when serialized (`souk config`), and URLs lose their passwords.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A string that must not be shown: `Debug` and `Serialize` print a placeholder.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

pub(crate) fn redacted_url<S: Serializer>(
    url: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        None => serializer.serialize_none(),
        Some(url) => serializer.serialize_str(&redact_url_password(url)),
    }
}

/// `mysql://user:pw@host/db` → `mysql://user:[redacted]@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("mysql://souk:hunter2@db:3306/souk"),
            "mysql://souk:[redacted]@db:3306/souk"
        );
        assert_eq!(
            redact_url_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
