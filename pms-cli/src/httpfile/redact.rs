//! Keeps secrets out of what `pms request` prints and writes (stdout, stderr, `-o json`, JUnit):
//! the session's tokens, every `Authorization` value a request sent, and anything shaped like a
//! JWT (a token a login request returned, a captured one) become `[redacted]`.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Shorter values are not treated as secrets: blanking every `1` or `ok` would ruin the output
/// and protect nothing.
const MIN_SECRET_LEN: usize = 8;

/// A set of known secret values; [`Redactor::redact`] also catches JWT-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret value (ignored when too short to be one).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET_LEN && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds an `Authorization` header value: the whole value and its credentials part
    /// (`Bearer abc…` → `abc…`).
    pub fn add_authorization(&mut self, value: &str) {
        self.add(value);
        if let Some((_, credentials)) = value.trim().split_once(' ') {
            self.add(credentials);
        }
    }

    /// `text` with every known secret and every JWT replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        redact_jwts(&out)
    }
}

/// Replaces `header.payload.signature` runs whose header is base64url JSON (`eyJ…`).
fn redact_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        let (before, candidate) = rest.split_at(start);
        out.push_str(before);
        let len = jwt_len(candidate);
        if len > 0 {
            out.push_str(REDACTED);
            rest = &candidate[len..];
        } else {
            out.push_str("eyJ");
            rest = &candidate[3..];
        }
    }
    out.push_str(rest);
    out
}

/// The length of the JWT at the start of `s` (three base64url segments, the first two at
/// least 10 characters), or 0.
fn jwt_len(s: &str) -> usize {
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = s.as_bytes();
    let mut i = 0;
    for segment in 0..3 {
        let start = i;
        while i < bytes.len() && is_b64(bytes[i]) {
            i += 1;
        }
        if segment < 2 {
            if i - start < 10 || bytes.get(i) != Some(&b'.') {
                return 0;
            }
            i += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str =
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMiLCJyb2xlIjoiQURNSU4ifQ.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn known_secrets_and_jwts_are_redacted() {
        let mut r = Redactor::default();
        r.add("opaque-session-token-123");
        r.add("short");
        r.add_authorization("Basic dXNlcjpwYXNzd29yZA==");
        assert_eq!(
            r.redact("GET /x?t=opaque-session-token-123&u=short"),
            "GET /x?t=[redacted]&u=short"
        );
        assert_eq!(
            r.redact("auth dXNlcjpwYXNzd29yZA== sent"),
            "auth [redacted] sent"
        );
        assert_eq!(
            r.redact(&format!("{{\"token\":\"{JWT}\",\"n\":\"eyJno\"}}")),
            "{\"token\":\"[redacted]\",\"n\":\"eyJno\"}"
        );
        assert_eq!(
            Redactor::default().redact(&format!("Bearer {JWT}.")),
            "Bearer [redacted]."
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }
}
