//! Validated auth inputs (parse, don't validate): an [`Email`] (the shared
//! [`crate::email::Email`]; accounts are keyed by its lowercase form) and a [`Password`] of
//! acceptable length. Handlers parse request bodies into
//! these at the edge; the store and the rest of the service only ever see valid values.

use secrecy::{ExposeSecret, SecretString};

/// Password length bounds, in characters (OWASP ASVS: at least 12, allow at least 64).
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Logins are the server's one email type; stored and looked up by [`Email::key`] (lowercase).
pub use crate::email::Email;

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
