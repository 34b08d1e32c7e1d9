//! The client address rate limits key on: the peer address, or, behind a trusted
//! proxy (`trust_forwarded_for`), the right-most `X-Forwarded-For` entry.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;

/// The peer address; with `trust_forwarded_for`, the right-most `X-Forwarded-For`
/// entry instead: the address the nearest proxy (the one trusted ingress, which appends
/// it) saw. Entries left of it, and the RFC 7239 `Forwarded` header, are whatever the
/// client sent, so they are never used: trusting them would let any client pick its own
/// rate-limit bucket. Without a parsable entry, the peer address.
pub fn client_ip(request: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(address) = rightmost_forwarded_for(request.headers()) {
            return address.to_string();
        }
    }
    request
        .peer_addr()
        .map(|address| address.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The last entry of the last `X-Forwarded-For` line, if it is an IP address (with or
/// without a port).
fn rightmost_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let line = headers.get_all("x-forwarded-for").last()?.to_str().ok()?;
    let entry = line.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn from(headers: &[(&str, &str)], trust: bool) -> String {
        let mut request = TestRequest::default().peer_addr("192.0.2.1:4000".parse().unwrap());
        for header in headers {
            request = request.append_header(*header);
        }
        client_ip(&request.to_http_request(), trust)
    }

    #[test]
    fn the_rightmost_forwarded_for_entry_is_the_client_behind_a_trusted_proxy() {
        let spoofed = ("x-forwarded-for", "10.9.9.9, 198.51.100.7");
        assert_eq!(from(&[spoofed], true), "198.51.100.7");
        assert_eq!(
            from(
                &[
                    ("x-forwarded-for", "10.9.9.9"),
                    ("x-forwarded-for", "198.51.100.7")
                ],
                true
            ),
            "198.51.100.7"
        );
        assert_eq!(
            from(&[("x-forwarded-for", "198.51.100.7:5555")], true),
            "198.51.100.7"
        );
        assert_eq!(
            from(&[("x-forwarded-for", "10.0.0.1,[2001:db8::1]:443")], true),
            "2001:db8::1"
        );
        assert_eq!(
            from(&[("x-forwarded-for", " 2001:db8::2 ")], true),
            "2001:db8::2"
        );
    }

    #[test]
    fn forwarded_is_ignored_and_garbage_falls_back_to_the_peer() {
        assert_eq!(from(&[("forwarded", "for=10.1.1.1")], true), "192.0.2.1");
        assert_eq!(
            from(
                &[
                    ("forwarded", "for=10.1.1.1"),
                    ("x-forwarded-for", "198.51.100.7")
                ],
                true
            ),
            "198.51.100.7"
        );
        for garbage in ["", "unknown", "10.0.0.1, ", "not-an-address"] {
            assert_eq!(
                from(&[("x-forwarded-for", garbage)], true),
                "192.0.2.1",
                "{garbage:?}"
            );
        }
        assert_eq!(
            from(&[("x-forwarded-for", "198.51.100.7")], false),
            "192.0.2.1"
        );
    }
}
