//! Who is calling from where, decided once at the edge of every service: the bounded request id
//! and the client address ([`RequestMeta`]), for audit rows, throttling, logs and propagation.
//!
//! - **Request id.** A client's `X-Request-Id` is kept only if it is 1–[`MAX_REQUEST_ID`] visible
//!   ASCII characters; anything else (absent, too long, spaces, non-ASCII) is replaced by a fresh
//!   UUID *in the request itself*, before tracing, so the response header, the logs, the hops
//!   the request is forwarded to and the audit rows all carry the same bounded value. (A client
//!   cannot grow an audit table by sending a 400 KB id.)
//! - **Client address.** The standard `X-Forwarded-For` walk: the chain is the header's
//!   addresses followed by the peer; starting at the peer, while the current hop is a trusted
//!   proxy, step one address to the left. The first untrusted address is the client. Whether the
//!   *peer* is believed is decided by [`ProxyTrust`]: its network is in `http.trusted_proxies`,
//!   or — for the internal listeners of `pms-server all` — the request carries the process's
//!   gateway secret ([`GATEWAY_SECRET`]), so another local process cannot pose as the gateway by
//!   connecting from loopback.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The request-id header, set by the gateway (or the first service a request reaches) and
/// forwarded to every hop.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Header by which the all-in-one gateway proves to the internal services that it, not another
/// local process, sent the request (and so its `X-Forwarded-For` may be believed).
pub const GATEWAY_SECRET: HeaderName = HeaderName::from_static("x-pms-gateway-secret");

/// Longest request id kept, in characters.
pub const MAX_REQUEST_ID: usize = 128;

/// Most `X-Forwarded-For` addresses considered (the right-most ones): the walk is bounded.
const MAX_FORWARDED_HOPS: usize = 32;

/// A request id: 1–128 visible ASCII characters (`!`–`~`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// `Some` if `raw` is an acceptable request id.
    pub fn parse(raw: &str) -> Option<RequestId> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_REQUEST_ID
            && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| RequestId(raw.to_owned()))
    }

    /// A fresh, random id.
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is calling from where: for audit rows and throttling. Never contains credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The original client address (see the module doc); `None` outside an HTTP request.
    pub client_ip: Option<IpAddr>,
    /// The bounded request id; `None` outside an HTTP request.
    pub request_id: Option<RequestId>,
}

impl RequestMeta {
    /// The client address as stored in audit rows.
    pub fn client_ip_text(&self) -> Option<String> {
        self.client_ip.map(|ip| ip.to_string())
    }

    /// The request id as stored in audit rows.
    pub fn request_id_str(&self) -> Option<&str> {
        self.request_id.as_ref().map(RequestId::as_str)
    }
}

/// The client address decided by [`normalize`].
#[derive(Debug, Clone, Copy)]
struct ClientIp(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client_ip = parts.extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
        // [`normalize`] already replaced a bad id; parsing again keeps the type honest when a
        // router runs without the common layers (tests).
        let request_id = parts
            .headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::parse);
        Ok(RequestMeta {
            client_ip,
            request_id,
        })
    }
}

/// Which peers' `X-Forwarded-For` a listener believes.
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    /// `http.trusted_proxies`: every hop of the chain is judged by these networks.
    pub networks: Vec<crate::http::Network>,
    /// Set on the internal listeners of `pms-server all`: the peer is believed only when the
    /// request carries this secret (the gateway's), whatever its address.
    pub gateway_secret: Option<GatewaySecret>,
}

impl ProxyTrust {
    fn trusts_network(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// Whether the direct peer may speak for someone else.
    fn trusts_peer(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        match &self.gateway_secret {
            Some(secret) => headers
                .get(&GATEWAY_SECRET)
                .is_some_and(|v| secret.matches(v.as_bytes())),
            None => self.trusts_network(peer),
        }
    }

    /// The original client of a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts_peer(peer, headers) {
            return peer;
        }
        let mut hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let keep = hops.len().saturating_sub(MAX_FORWARDED_HOPS);
        hops.drain(..keep);
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An address the trusted hop could not have written ends the walk there.
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts_network(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an IP address, optionally `[v6]` or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|a| canonical(a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<IpAddr>().ok())
                .map(canonical)
        })
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 clients) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A per-process random secret shared by the all-in-one gateway and its internal services.
/// `Debug` redacts it; it never leaves the process except in the header to loopback services.
#[derive(Clone)]
pub struct GatewaySecret(HeaderValue);

impl GatewaySecret {
    /// 256 random bits, hex.
    pub fn generate() -> GatewaySecret {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let hex = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut value = HeaderValue::from_str(&hex).expect("hex is a valid header value");
        value.set_sensitive(true);
        GatewaySecret(value)
    }

    /// The header value the gateway sends (a cheap clone: no copy, no validation per request).
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// Compares in constant time, so the comparison's timing says nothing about the secret.
    fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        presented.ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for GatewaySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewaySecret([redacted])")
    }
}

/// The first step of every request in every service (after the header-size bound): bounds the
/// request id and decides the client address, both before anything logs or reads them. A plain
/// request mapping (`ServiceBuilder::map_request`), not a middleware: nothing to box per request.
pub fn normalize(trust: &ProxyTrust, mut req: Request) -> Request {
    let valid = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .is_some();
    if !valid {
        let fresh = RequestId::generate();
        // Invariant: a UUID is a valid header value.
        if let Ok(value) = HeaderValue::from_str(fresh.as_str()) {
            req.headers_mut().insert(REQUEST_ID, value);
        }
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let ip = trust.client_ip(peer, req.headers());
        req.extensions_mut().insert(ClientIp(ip));
    }
    // Nobody past this point needs the secret; a handler that forwards headers must not leak it.
    req.headers_mut().remove(&GATEWAY_SECRET);
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_networks;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(RequestId::parse("abc-123_X.y").is_some());
        assert!(RequestId::parse(&"a".repeat(128)).is_some());
        assert!(RequestId::parse(&"a".repeat(129)).is_none());
        for bad in ["", "has space", "tab\t", "é", "new\nline"] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?}");
        }
        let fresh = RequestId::generate();
        assert!(RequestId::parse(fresh.as_str()).is_some());
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trust = ProxyTrust {
            networks: parse_networks("10.0.0.0/8").expect("nets"),
            gateway_secret: None,
        };
        let xff = |v: &str| headers(&[("x-forwarded-for", v)]);
        // Untrusted peer: its header is ignored.
        assert_eq!(
            trust.client_ip(ip("203.0.113.5"), &xff("1.2.3.4")),
            ip("203.0.113.5")
        );
        // Trusted peer: the chain is walked from the right past trusted hops; a client's forged
        // left-most entry is not believed.
        assert_eq!(
            trust.client_ip(ip("10.0.0.2"), &xff("6.6.6.6, 198.51.100.9, 10.0.0.1")),
            ip("198.51.100.9")
        );
        assert_eq!(
            trust.client_ip(ip("10.0.0.2"), &headers(&[])),
            ip("10.0.0.2")
        );
        // Everything trusted: the left-most address.
        assert_eq!(
            trust.client_ip(ip("10.0.0.2"), &xff("10.9.9.9")),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            trust.client_ip(ip("10.0.0.2"), &xff("198.51.100.9, garbage")),
            ip("10.0.0.2")
        );
        // Ports and brackets, several header lines.
        let two = headers(&[
            ("x-forwarded-for", "198.51.100.7:4711"),
            ("x-forwarded-for", "[2001:db8::1]"),
        ]);
        assert_eq!(trust.client_ip(ip("10.0.0.2"), &two), ip("2001:db8::1"));
    }

    #[test]
    fn with_a_gateway_secret_only_the_gateway_is_believed() {
        let secret = GatewaySecret::generate();
        let trust = ProxyTrust {
            networks: parse_networks("127.0.0.0/8").expect("nets"),
            gateway_secret: Some(secret.clone()),
        };
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            trust.client_ip(ip("127.0.0.1"), &forged),
            ip("127.0.0.1"),
            "a local process without the secret"
        );
        let wrong = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-pms-gateway-secret", "guess"),
        ]);
        assert_eq!(trust.client_ip(ip("127.0.0.1"), &wrong), ip("127.0.0.1"));
        let value = secret.header_value();
        let mut real = headers(&[("x-forwarded-for", "203.0.113.9, 127.0.0.1")]);
        real.insert(GATEWAY_SECRET, value);
        assert_eq!(trust.client_ip(ip("127.0.0.1"), &real), ip("203.0.113.9"));
        assert_eq!(format!("{secret:?}"), "GatewaySecret([redacted])");
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let trust = ProxyTrust::default();
        assert_eq!(
            trust.client_ip(ip("::ffff:192.0.2.1"), &headers(&[])),
            ip("192.0.2.1")
        );
    }
}
