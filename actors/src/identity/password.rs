use std::fmt;

/// A new password as chosen by a user: 8 to 72 bytes (bcrypt reads no further, and a
/// longer password would be silently truncated), not only whitespace. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes", Self::MAX_BYTES));
        }
        if raw.trim().is_empty() {
            return Err("must not be only whitespace".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn bounds() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("        ").is_err());
        assert!(Password::parse("correct horse").is_ok());
        assert!(Password::parse(&"x".repeat(72)).is_ok());
        assert!(Password::parse(&"x".repeat(73)).is_err());
        assert!(!format!("{:?}", Password::parse("correct horse").unwrap()).contains("horse"));
    }
}
