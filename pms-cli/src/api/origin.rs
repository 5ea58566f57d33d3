//! Where credentials may go: only to the configured server's origin (scheme, host, port),
//! compared on parsed URLs — never as string prefixes (`http://127.0.0.1:4004` is a prefix of
//! `http://127.0.0.1:40041/` and of `http://127.0.0.1:4004.evil.example/`).
//!
//! Also the client's redirect policy: redirects are followed only within the origin they
//! started from. reqwest itself drops `Authorization` when host or port change, but not when
//! only the scheme changes, and never drops other headers; stopping at the origin boundary
//! keeps every header home. The stopped 3xx reaches the caller, who reports it.

use reqwest::redirect::Policy;
use url::Url;

/// Redirects followed at most (reqwest's own default).
const MAX_REDIRECTS: usize = 10;

/// Whether `a` and `b` share scheme, host and port (default ports made explicit). URLs without
/// a tuple origin (`file:`, `data:`) are never the same origin as anything.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    let (a, b) = (a.origin(), b.origin());
    a.is_tuple() && a == b
}

/// The URL of `target` for a client whose base is `base`: a path (`/api/…`) is appended to the
/// base (which may carry a path prefix); anything else is resolved as an RFC 3986 reference
/// against it (`https://other/…`, `//other/…`, `?cursor=…`).
pub fn resolve(base: &Url, target: &str) -> Result<Url, url::ParseError> {
    if target.starts_with('/') && !target.starts_with("//") {
        Url::parse(&format!("{}{target}", base.as_str().trim_end_matches('/')))
    } else {
        base.join(target)
    }
}

/// The redirect policy of every client: follow within the first request's origin only.
pub(crate) fn same_origin_redirects() -> Policy {
    Policy::custom(|attempt| {
        let stay = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if stay {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origins_are_compared_parsed_not_as_prefixes() {
        let base = url("http://127.0.0.1:4004");
        for same in [
            "http://127.0.0.1:4004/api/patients?cursor=x",
            "HTTP://127.0.0.1:4004/",
            "http://127.0.0.1:4004/../x",
        ] {
            assert!(same_origin(&base, &url(same)), "{same}");
        }
        for other in [
            "http://127.0.0.1:40041/api/patients",
            "http://127.0.0.1:4004.evil.example/api/patients",
            "http://127.0.0.1:4004@evil.example/api/patients",
            "https://127.0.0.1:4004/api/patients",
            "http://localhost:4004/api/patients",
            "http://127.0.0.1/api/patients",
            "file:///etc/passwd",
        ] {
            // Some are not even URLs (`:4004.evil.example` is no port): never the origin.
            let parsed = Url::parse(other);
            assert!(parsed.is_ok() || other.contains(".evil.example"), "{other}");
            assert!(!parsed.is_ok_and(|u| same_origin(&base, &u)), "{other}");
        }
        assert!(
            same_origin(
                &url("https://pms.example"),
                &url("https://pms.example:443/x")
            ),
            "default ports are explicit"
        );
        assert!(!same_origin(&url("data:,x"), &url("data:,x")), "opaque");
    }

    #[test]
    fn targets_resolve_against_the_base() {
        let base = url("https://pms.example/base");
        assert_eq!(
            resolve(&base, "/api/patients?limit=2").unwrap().as_str(),
            "https://pms.example/base/api/patients?limit=2"
        );
        assert_eq!(
            resolve(&base, "//evil.example/api").unwrap().host_str(),
            Some("evil.example"),
            "a scheme-relative link is another host, not a path"
        );
        assert_eq!(
            resolve(&base, "http://127.0.0.1:40041/x")
                .unwrap()
                .port_or_known_default(),
            Some(40041)
        );
    }
}
