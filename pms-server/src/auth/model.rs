//! Validated auth inputs (parse, don't validate): an [`Email`] is trimmed, lowercased and
//! syntactically valid; a [`Password`] has an acceptable length. Handlers parse request bodies into
//! these at the edge; the store and the rest of the service only ever see valid values.

use secrecy::{ExposeSecret, SecretString};

/// Longest accepted email address (RFC 5321 path limit).
pub const EMAIL_MAX_LEN: usize = 254;
/// Longest local part (before the `@`), RFC 5321.
const LOCAL_MAX_LEN: usize = 64;
/// Password length bounds, in characters (OWASP ASVS: at least 12, allow at least 64).
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A syntactically valid email address, normalised to lowercase: account lookup and uniqueness
/// are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims, checks and lowercases `raw`. The error is a message for the `email` field.
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim();
        if email.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if email.len() > EMAIL_MAX_LEN {
            return Err(format!("must be at most {EMAIL_MAX_LEN} characters"));
        }
        let invalid = || "must be a valid email address".to_owned();
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || local.len() > LOCAL_MAX_LEN
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.chars().all(is_local_char)
        {
            return Err(invalid());
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if domain.is_empty() || !labels_ok {
            return Err(invalid());
        }
        Ok(Email(email.to_lowercase()))
    }

    /// The lowercase form of a login name, for lookups and throttling. Unlike [`Email::parse`]
    /// it never fails: a login with a malformed email must look exactly like an unknown account.
    pub fn normalize_login(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 5322 `atext` plus `.`, and any non-ASCII character (RFC 6531 internationalised addresses).
fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+/=?^_`{|}~-.".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

/// A new password of acceptable length that is not a common one. Never trimmed: spaces are part
/// of a passphrase.
pub struct Password(SecretString);

impl Password {
    /// Checks the length of `raw` in characters. The error is a message for the password field.
    pub fn parse(raw: String) -> Result<Password, String> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(format!("must be at least {PASSWORD_MIN_CHARS} characters"));
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(format!("must be at most {PASSWORD_MAX_CHARS} characters"));
        }
        if let Some(weakness) = crate::auth::common_passwords::weakness(&raw) {
            return Err(weakness.to_owned());
        }
        Ok(Password(SecretString::from(raw)))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let email = Email::parse("  Jane.Doe+pms@Example.ORG ").expect("valid");
        assert_eq!(email.as_str(), "jane.doe+pms@example.org");
        assert_eq!(
            Email::parse("admin@pms.local").expect("valid").as_str(),
            "admin@pms.local"
        );
        assert_eq!(
            Email::parse("root@localhost").expect("valid").as_str(),
            "root@localhost"
        );
        assert_eq!(
            Email::parse("Zoë@Exämple.de").expect("valid").as_str(),
            "zoë@exämple.de"
        );
    }

    #[test]
    fn invalid_emails_are_refused() {
        for bad in [
            "",
            "   ",
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
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn email_length_is_capped() {
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.org",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let longest = format!("{local}@{domain}");
        assert_eq!(longest.len(), EMAIL_MAX_LEN);
        assert!(Email::parse(&longest).is_ok());
        let too_long = format!("{local}@e{domain}");
        assert_eq!(
            Email::parse(&too_long).expect_err("too long"),
            "must be at most 254 characters"
        );
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(65))).is_err());
    }

    #[test]
    fn login_names_normalise_without_failing() {
        assert_eq!(
            Email::normalize_login(" Admin@PMS.local "),
            "admin@pms.local"
        );
        assert_eq!(Email::normalize_login("not an email"), "not an email");
    }

    #[test]
    fn password_length_bounds_count_characters() {
        assert_eq!(
            Password::parse("a".repeat(11)).expect_err("short"),
            "must be at least 12 characters"
        );
        assert!(Password::parse("vivid otter1".to_owned()).is_ok());
        assert!(
            Password::parse("élan vital é".to_owned()).is_ok(),
            "characters, not bytes"
        );
        let longest: String = "vivid otter lamp ".repeat(8);
        assert!(Password::parse(longest[..128].to_owned()).is_ok());
        assert_eq!(
            Password::parse("a".repeat(129)).expect_err("long"),
            "must be at most 128 characters"
        );
        assert!(
            Password::parse("passwordpassword".to_owned())
                .expect_err("common")
                .contains("choose another")
        );
        let spaced = Password::parse("  twelve chars  ".to_owned()).expect("valid");
        assert_eq!(spaced.expose(), "  twelve chars  ", "never trimmed");
        assert_eq!(format!("{spaced:?}"), "Password([REDACTED])");
    }
}
