/// A name as [`PersonName::parse`] accepts it, as the API document's `pattern` (with
/// `maxLength` 100): no control character, no bidirectional control, and one character
/// that is neither white space nor invisible.
pub const NAME_PATTERN: &str = concat!(
    "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\u200e\\u200f\\u061c]*",
    "[^\\s\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\u200e\\u200f\\u061c",
    "\\u200b-\\u200d\\u2060-\\u2064\\ufeff\\u00ad\\u115f\\u1160\\u3164\\uffa0]",
    "[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\u200e\\u200f\\u061c]*$",
);

/// A person's display name: trimmed, 1..=100 characters, no control characters, no
/// bidirectional overrides or isolates (they make a name display as another), and at
/// least one visible character (a name of zero-width characters shows as nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if trimmed.chars().any(is_bidi_control) {
            return Err("must not contain bidirectional text controls".into());
        }
        if trimmed.chars().all(is_invisible) {
            return Err("must contain a visible character".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the marks
/// U+200E, U+200F, U+061C.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that render as nothing: zero-width space, joiners, word joiner, BOM,
/// invisible operators, and the Hangul fillers.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
    ) || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::{PersonName, NAME_PATTERN};
    use proptest::prelude::*;

    proptest! {
        /// Every name the document's pattern allows is one the validator accepts.
        #[test]
        fn names_the_pattern_allows_are_accepted(
            raw in NAME_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            prop_assume!(raw.trim().chars().count() <= PersonName::MAX_CHARS);
            prop_assert!(PersonName::parse(&raw).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn the_pattern_refuses_what_the_validator_refuses() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        for refused in ["\u{200B}\u{200C}", "admin\u{202E}txt", "a\u{0}b", "   "] {
            assert!(!pattern.is_match(refused), "{refused:?}");
            assert!(PersonName::parse(refused).is_err(), "{refused:?}");
        }
        assert!(pattern.is_match("Zoë 🛒 <script>"));
    }

    #[test]
    fn bounds() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert!(PersonName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn invisible_and_bidi_tricks_are_refused() {
        assert!(PersonName::parse("\u{200B}\u{200C}\u{200D}").is_err());
        assert!(PersonName::parse("\u{FEFF}\u{2060}").is_err());
        assert!(PersonName::parse("\u{200B} \u{3164}").is_err());
        assert!(PersonName::parse("admin\u{202E}txt.exe").is_err());
        assert!(PersonName::parse("Ada\u{2066}x\u{2069}").is_err());
        // Joiners inside real text stay: some scripts need them.
        assert!(PersonName::parse("क्\u{200D}ष").is_ok());
    }
}
