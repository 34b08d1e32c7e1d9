//! The client address rate limits key on.

use actix_web::HttpRequest;

/// The peer address, or the first `X-Forwarded-For` hop when Souk runs behind a proxy
/// that is trusted to set it (`trust_forwarded_for`); trusting it otherwise would let
/// any client pick its own rate-limit bucket.
pub fn client_ip(request: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(address) = request.connection_info().realip_remote_addr() {
            return strip_port(address).to_owned();
        }
    }
    request
        .peer_addr()
        .map(|address| address.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn strip_port(address: &str) -> &str {
    // An IPv6 address without brackets has several colons and no port.
    if address.matches(':').count() == 1 {
        return address.split(':').next().unwrap_or(address);
    }
    address
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or(address)
}
