use std::fmt;

/// The addresses the API document promises to accept (its `pattern`, with `maxLength`
/// 254): an ASCII subset of what [`Email::parse`] accepts — a dot-atom-like local part
/// of 1 to 64 characters, then at least two domain labels of letters, digits and inner
/// `-`, each 1 to 63 long. `parse` also takes Unicode domain labels and surrounding
/// spaces; the pattern leaves them out so that everything it allows is accepted.
pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// A syntactically plausible email address, trimmed and lowercased. Deliverability is
/// proved by the verification mail, not by a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let candidate = raw.trim().to_lowercase();
        if candidate.is_empty() {
            return Err("must not be empty".into());
        }
        if candidate.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        if candidate
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("must not contain spaces or control characters".into());
        }
        let Some((local, domain)) = candidate.rsplit_once('@') else {
            return Err("must contain @".into());
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err("has an invalid part before @".into());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err("has an invalid domain".into());
        }
        Ok(Self(candidate))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Email, EMAIL_PATTERN};
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@-x.com",
            "ada@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    proptest! {
        #[test]
        fn accepted_addresses_are_normalised(local in "[a-zA-Z0-9._+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let email = Email::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(email.as_str(), format!("{}@{}", local.to_lowercase(), domain));
        }

        /// What the API document allows, the validator accepts.
        #[test]
        fn the_documented_pattern_is_accepted(
            raw in EMAIL_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            prop_assume!(raw.len() <= 254);
            prop_assert!(Email::parse(&raw).is_ok(), "{raw:?}");
        }

        #[test]
        fn never_panics(raw in "\\PC{0,300}") {
            let _ = Email::parse(&raw);
        }
    }
}
