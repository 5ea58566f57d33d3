//! Refuses passwords that are common or trivially derived from common ones (OWASP ASVS 2.1.7).
//!
//! The bundled list (`common-passwords.txt`, Openwall's `password.lst`, public domain, ~3,500
//! entries sorted by frequency) holds mostly short words; since PMS requires 12 characters, the
//! ways people stretch them to 12 matter more than the words themselves, so a password is refused
//! when, compared case-insensitively, it is
//! - on the list, or
//! - a listed word (≥ 4 characters) followed or preceded by digits and punctuation
//!   (`password2024!`, `123qwertyuiop`), or
//! - one short unit repeated (`passwordpassword`, `abcabcabcabc`, `111111111111`), or
//! - a run of a keyboard or alphabet sequence (`123456789012`, `qwertyuiopas`).

use std::collections::HashSet;
use std::sync::LazyLock;

static LIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with("#!comment:") && !line.is_empty())
        .collect()
});

/// Sequences whose runs are refused (also reversed).
const SEQUENCES: [&str; 4] = [
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890123456789",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
];

/// Why a password is refused, for the field error; `None` if it is acceptable.
pub fn weakness(password: &str) -> Option<&'static str> {
    let lower = password.to_lowercase();
    if LIST.contains(lower.as_str()) {
        return Some("is one of the most common passwords; choose another");
    }
    let is_filler = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ';
    for core in [
        lower.trim_end_matches(is_filler),
        lower.trim_start_matches(is_filler),
        lower.trim_matches(is_filler),
    ] {
        if core.chars().count() >= 4 && core != lower && LIST.contains(core) {
            return Some("is a common password with digits or symbols added; choose another");
        }
    }
    if is_repetition(&lower) {
        return Some("repeats a short sequence; choose another");
    }
    if is_sequence_run(&lower) {
        return Some("is a keyboard or alphabet sequence; choose another");
    }
    None
}

/// `unit` repeated at least twice, with a unit of at most 8 characters.
fn is_repetition(password: &str) -> bool {
    let chars: Vec<char> = password.chars().collect();
    (1..=8.min(chars.len() / 2)).any(|period| {
        chars.len().is_multiple_of(period)
            && chars.chunks(period).all(|chunk| chunk == &chars[..period])
    })
}

fn is_sequence_run(password: &str) -> bool {
    SEQUENCES.iter().any(|sequence| {
        let reversed: String = sequence.chars().rev().collect();
        sequence.contains(password) || reversed.contains(password)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_derived_passwords_are_refused() {
        for weak in [
            "passwordpassword",
            "PasswordPassword",
            "password1234",
            "password2024!",
            "2024!password",
            "123qwertyuiop",
            "abcabcabcabc",
            "111111111111",
            "123456789012",
            "qwertyuiopas",
            "zyxwvutsrqpo",
            "iloveyou1234",
        ] {
            assert!(weakness(weak).is_some(), "{weak:?} must be refused");
        }
    }

    #[test]
    fn ordinary_passphrases_pass() {
        for fine in [
            "correct horse battery staple",
            "Tr0ub4dor&3-extended",
            "vivid-otter-lamp-42",
            "éléphant rose 2026",
        ] {
            assert_eq!(weakness(fine), None, "{fine:?} must be accepted");
        }
        assert!(LIST.len() > 3000, "the bundled list is loaded");
        assert!(!LIST.iter().any(|w| w.starts_with("#!")));
    }
}
