//! What a session's keyring entry is called. The keyring is shared by every process of the OS
//! user, so the name carries everything that tells sessions apart: the profile, the server, and
//! — when it is not the default one — the config directory (`PMS_CONFIG_DIR`). Otherwise a
//! `pms logout` under one config dir would remove another's session.
//!
//! Entries of earlier versions were named by profile alone; [`legacy_user`] names them so they
//! can be migrated on first read.

use std::path::Path;

/// The keyring "user" of a session (the service is [`super::KEYRING_SERVICE`]):
/// `default@https://pms.example` or `ci@http://127.0.0.1:4004 (config 9f3c…)`.
pub fn keyring_user(profile: &str, server: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{profile}@{server} (config {ns})"),
        None => format!("{profile}@{server}"),
    }
}

/// The name of a profile's entry before entries were namespaced.
pub fn legacy_user(profile: &str) -> &str {
    profile
}

/// The namespace of a config directory that is not the default one: a stable 64-bit FNV-1a hash
/// of its absolute path, in hex (short, and the same in every later run; the std hasher is not
/// stable across releases).
pub fn config_namespace(dir: &Path, default_dir: Option<&Path>) -> Option<String> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let dir = absolute(dir);
    if default_dir.is_some_and(|d| absolute(d) == dir) {
        return None;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.to_string_lossy().as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Some(format!("{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_profile_server_and_a_non_default_config_dir() {
        assert_eq!(
            keyring_user("default", "http://127.0.0.1:4004", None),
            "default@http://127.0.0.1:4004"
        );
        let home = Path::new("/home/u/.config/pms");
        assert_eq!(config_namespace(home, Some(home)), None);
        let a = config_namespace(Path::new("/tmp/a"), Some(home)).unwrap();
        let b = config_namespace(Path::new("/tmp/b"), Some(home)).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert_eq!(
            config_namespace(Path::new("/tmp/a"), None).as_deref(),
            Some(a.as_str()),
            "stable"
        );
        assert_eq!(
            keyring_user("ci", "https://pms.example", Some(&a)),
            format!("ci@https://pms.example (config {a})")
        );
    }
}
