//! Private at rest: the data dir is 0700 and every file the server writes in it 0600, whatever
//! the umask the process was started with (DESIGN §3). `auth.db` holds the token signing key and
//! `patient.db` patient records: a second local user must read nothing.
//!
//! Three layers, because each alone has a gap: [`restrict_umask`] makes every file the process
//! creates private (SQLite's `-wal`/`-shm` files included, which SQLite creates itself);
//! [`private_dir`] creates or repairs the data dir and repairs group/world-readable files found in
//! it (left by an older version or a copy), warning with the path; [`private_file`] repairs one
//! file after it was created by code that does not take a mode (SQLite), for library users and
//! tests that never call [`restrict_umask`].

use std::path::Path;

use anyhow::Context;

/// Mode of the data dir.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in it.
pub const FILE_MODE: u32 = 0o600;

/// Sets the process umask to 077 so that nothing the process creates is readable by others.
/// Called first thing in `main`, before any thread exists.
pub fn restrict_umask() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::from_bits_truncate(0o077));
    }
}

/// Creates `dir` (and its parents) if missing, and makes it and every file directly in it private
/// (dir 0700, files 0600). A path that had to be repaired is named in a warning.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        repair(dir, DIR_MODE)?;
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                // Gone since the listing: SQLite's transient `-journal` of a database that
                // another service of this process is opening at the same time.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot inspect {}", entry.path().display()));
                }
            };
            // Symlinks are left alone: chmod would follow them out of the data dir.
            if kind.is_file() {
                repair(&entry.path(), FILE_MODE)?;
            }
        }
    }
    Ok(())
}

/// Makes `path` 0600 if it exists and is readable or writable by group or others.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    if path.exists() {
        repair(path, FILE_MODE)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Removes group/world bits from `path`, warning when there were any.
#[cfg(unix)]
fn repair(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o7777,
        // Gone meanwhile (a transient SQLite file): nothing left to protect.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if current & 0o077 == 0 {
        return Ok(());
    }
    tracing::warn!(
        path = %path.display(),
        mode = format!("{current:o}"),
        "was accessible to other users; made private ({mode:o})"
    );
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        result => result
            .with_context(|| format!("cannot make {} private (chmod {mode:o})", path.display())),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn an_open_data_dir_and_its_files_are_repaired() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("pms-data");
        std::fs::create_dir(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for name in ["auth.db", "auth.db-wal", "admin-password"] {
            let file = dir.join(name);
            std::fs::write(&file, b"x").expect("file");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        private_dir(&dir).expect("repaired");
        assert_eq!(mode(&dir), 0o700);
        for name in ["auth.db", "auth.db-wal", "admin-password"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }

    /// SQLite's `-journal` of a database another service is opening can vanish between the
    /// listing of the data dir and its inspection: not an error (it once failed a start).
    #[test]
    fn a_file_gone_before_its_repair_is_not_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let gone = dir.path().join("billing.db-journal");
        repair(&gone, FILE_MODE).expect("a vanished file needs no repair");
        let err = repair(&dir.path().join("missing-dir/x"), FILE_MODE);
        assert!(err.is_ok(), "{err:?}");
    }

    #[test]
    fn a_missing_data_dir_is_created_private() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("a/b/pms-data");
        private_dir(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("x.db");
        std::fs::write(&file, b"x").expect("file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        private_file(&file).expect("repaired");
        assert_eq!(mode(&file), 0o600);
        private_file(&dir.join("absent")).expect("absent files are fine");
    }
}
