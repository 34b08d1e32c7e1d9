//! Error text as logs may carry it: an SMTP server's answer often quotes the recipient
//! (`550 5.1.1 <ann@example.com>: user unknown`), and an address is personal data.

/// `text` with every word that holds an `@` (an address, bracketed or not) replaced by
/// `<address>`.
pub fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_leave_error_text() {
        assert_eq!(
            without_addresses("550 5.1.1 <ann@example.com>: user unknown, cc bob@x.org"),
            "550 5.1.1 <address> user unknown, cc <address>"
        );
        assert_eq!(
            without_addresses("451 try again later"),
            "451 try again later"
        );
    }
}
