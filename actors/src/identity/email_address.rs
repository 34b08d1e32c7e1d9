use std::fmt;

/// The addresses the API document promises to accept (its `pattern`, with `maxLength`
/// 254): an ASCII subset of what [`Email::parse`] accepts — a dot-atom-like local part
/// of 1 to 64 characters, then at least two domain labels of letters, digits and inner
/// `-`, each 1 to 63 long. `parse` also takes Unicode domain labels and surrounding
/// spaces; the pattern leaves them out so that everything it allows is accepted.
pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// A syntactically plausible email address, trimmed and lowercased. Deliverability is
/// proved by the verification mail, not by a regex.
///
/// Look-alike addresses: the part before `@` must be printable ASCII, so a Cyrillic
/// `а` cannot pass for a Latin `a` there; an internationalised domain is stored and
/// shown in its ASCII form (`bücher.de` → `xn--bcher-kva.de`), so a look-alike domain
/// reads differently from the one it imitates and can never equal it.
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
        if !local.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must use only ASCII letters, digits and punctuation before @".into());
        }
        // Only an internationalised domain is converted: an ASCII one is checked as it
        // is below.
        let domain = if domain.is_ascii() {
            domain.to_owned()
        } else {
            idna::domain_to_ascii(domain).map_err(|_| "has an invalid domain".to_owned())?
        };
        let candidate = format!("{local}@{domain}");
        if candidate.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
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
    fn look_alike_addresses_cannot_pass_for_the_real_one() {
        // A Cyrillic "а" in the local part is refused; in the domain it shows as ACE.
        assert!(Email::parse("\u{0430}da@example.com").is_err());
        let imitation = Email::parse("ada@ex\u{0430}mple.com").unwrap();
        assert!(imitation.as_str().starts_with("ada@xn--"), "{imitation}");
        assert_ne!(imitation, Email::parse("ada@example.com").unwrap());
        assert_eq!(
            Email::parse("Ada@Bücher.DE").unwrap().as_str(),
            "ada@xn--bcher-kva.de"
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
