//! The one email-address type of the server (patients' contact addresses, users' logins): parse,
//! don't validate. An [`Email`] is trimmed, at most [`EMAIL_MAX`] bytes (RFC 5321's path limit,
//! so at most 254 characters too) and `local@domain` where
//! - the local part is 1–64 bytes of RFC 5322 `atext`, dots (not leading, trailing or doubled)
//!   and non-ASCII letters (RFC 6531);
//! - the domain is at most 253 bytes of dot-separated labels (1–63 characters: letters, digits,
//!   hyphens not at either end), at least two of them, the last not all digits (which rules out
//!   `user@1.2.3.4` typos and dotless hosts like `root@localhost`).
//!
//! **Case.** [`Email::as_str`] is the address as entered (trimmed), for display — a patient's
//! contact address is shown the way it was given. [`Email::key`], the whole address lowercased,
//! is its identity: uniqueness, lookups and throttling use it, and user accounts are stored by it.
//! (Domains are case-insensitive, RFC 5321 §2.4; local parts *may* be case-sensitive by the RFC,
//! but no mail system in use treats `Jane@` and `jane@` as different people, and two patients or
//! two logins differing only by case are a data-entry error.)

/// Longest accepted address, in bytes.
pub const EMAIL_MAX: usize = 254;
/// Longest local part (before the `@`), in bytes.
const LOCAL_MAX: usize = 64;
/// Longest domain, in bytes.
const DOMAIN_MAX: usize = 253;

/// A syntactically valid email address (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not an [`Email`]. `Display` is a message for the field; services with their
/// own wording (the patient API keeps the reference system's) map the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("must be a valid email address")]
    Invalid,
}

impl From<EmailError> for String {
    fn from(e: EmailError) -> String {
        e.to_string()
    }
}

impl Email {
    /// Trims and checks `raw`.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.len() > EMAIL_MAX {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = email.rsplit_once('@').ok_or(EmailError::Invalid)?;
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err(EmailError::Invalid);
        }
        Ok(Email(email.to_owned()))
    }

    /// The lowercase form of a login name, for lookups and throttling, bounded by
    /// [`EMAIL_MAX`] so no client value of unbounded size becomes a key. Unlike
    /// [`Email::parse`] it never fails: a login with a malformed email must look exactly like an
    /// unknown account.
    pub fn normalize_login(raw: &str) -> String {
        let trimmed = raw.trim();
        let mut end = trimmed.len().min(EMAIL_MAX + 1);
        while !trimmed.is_char_boundary(end) {
            end -= 1;
        }
        trimmed[..end].to_lowercase()
    }

    /// The address as entered (trimmed), for display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity: uniqueness, lookups, throttling.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    !local.is_empty()
        && local.len() <= LOCAL_MAX
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || SPECIALS.contains(c)
                || (!c.is_ascii() && c.is_alphanumeric())
        })
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= DOMAIN_MAX
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses_parse_and_keep_their_case() {
        for (raw, shown, key) in [
            (
                "  Jane.Doe+pms@Example.ORG ",
                "Jane.Doe+pms@Example.ORG",
                "jane.doe+pms@example.org",
            ),
            ("admin@pms.local", "admin@pms.local", "admin@pms.local"),
            (
                "o'brien@example.ie",
                "o'brien@example.ie",
                "o'brien@example.ie",
            ),
            ("Zoë@Exämple.de", "Zoë@Exämple.de", "zoë@exämple.de"),
            (
                "x_y-z@host-1.example",
                "x_y-z@host-1.example",
                "x_y-z@host-1.example",
            ),
        ] {
            let email = Email::parse(raw).expect(raw);
            assert_eq!(
                (email.as_str(), email.key().as_str()),
                (shown, key),
                "{raw}"
            );
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        for bad in [
            "plain",
            "@example.org",
            "jane@",
            "jane@@example.org",
            "jane doe@example.org",
            ".jane@example.org",
            "jane.@example.org",
            "ja..ne@example.org",
            "jane@example..org",
            "jane@-example.org",
            "jane@example-.org",
            "jane@exa_mple.org",
            "jane@example.org.",
            "ja\u{0}ne@example.org",
            "root@localhost",
            "user@1.2.3.4",
            "a@b",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn length_is_capped_in_bytes() {
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.org",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let longest = format!("{local}@{domain}");
        assert_eq!(longest.len(), EMAIL_MAX);
        assert!(Email::parse(&longest).is_ok());
        assert_eq!(
            Email::parse(&format!("{local}@e{domain}")),
            Err(EmailError::TooLong)
        );
        assert_eq!(
            Email::parse(&format!("{}@example.org", "a".repeat(65))),
            Err(EmailError::Invalid)
        );
        assert_eq!(
            EmailError::TooLong.to_string(),
            "must be at most 254 characters"
        );
    }

    #[test]
    fn login_names_are_lowercased_and_bounded() {
        assert_eq!(Email::normalize_login(" Jane@X.org "), "jane@x.org");
        let huge = "é".repeat(500_000);
        assert!(Email::normalize_login(&huge).len() <= EMAIL_MAX + 1);
    }
}
