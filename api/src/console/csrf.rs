//! CSRF protection of every console form (synchronizer tokens). A signed-in form
//! carries the token sealed in the session cookie; the sign-in form, before any
//! session, carries one sealed in a short-lived cookie of its own. A token is compared
//! in constant time; a form without the right one is refused before anything happens.

use actix_web::cookie::Cookie;
use actix_web::HttpRequest;

use super::page::ConsoleError;
use super::session::{self, AdminSession};
use super::Console;

pub const SIGN_IN_COOKIE: &str = "souk_console_signin";
const SIGN_IN_MAX_AGE_SECS: i64 = 3600;

/// Equal without leaking, through timing, how much of the prefix matched.
fn same(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// A form posted within a session must carry the session's token.
pub fn check(session: &AdminSession, presented: Option<&str>) -> Result<(), ConsoleError> {
    match presented {
        Some(token) if !session.csrf.is_empty() && same(&session.csrf, token) => Ok(()),
        _ => {
            tracing::warn!(user_id = %session.user_id, "console form refused: missing or wrong csrf token");
            Err(ConsoleError::missing_csrf())
        }
    }
}

/// The sign-in form's token from its cookie, if the cookie is genuine.
pub fn sign_in_token(console: &Console, request: &HttpRequest) -> Option<String> {
    session::unseal(console, request, SIGN_IN_COOKIE).filter(|token| token.len() == 43)
}

/// The sealed cookie holding a sign-in form's token.
pub fn sign_in_cookie(console: &Console, token: &str, secure: bool) -> Cookie<'static> {
    let cookie = session::hardened(
        Cookie::build(SIGN_IN_COOKIE, token.to_owned()),
        secure,
        SIGN_IN_MAX_AGE_SECS,
    );
    session::seal(console, cookie)
}

/// A sign-in form must carry the token of the cookie its page set.
pub fn check_sign_in(
    console: &Console,
    request: &HttpRequest,
    presented: Option<&str>,
) -> Result<(), ConsoleError> {
    match (sign_in_token(console, request), presented) {
        (Some(expected), Some(token)) if same(&expected, token) => Ok(()),
        _ => {
            tracing::warn!("console sign-in refused: missing or wrong csrf token");
            Err(ConsoleError::missing_csrf())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn compares_whole_tokens() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
