//! Private files: directories created 0700, files written 0600 through a temporary file and an
//! atomic rename (a crash never leaves a half-written session, and the secret is never readable
//! by others, not even for a moment). Modes are set explicitly, so the umask does not matter;
//! what an older version or a user left group/world-accessible is fixed on the next run, with a
//! warning naming the path.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Creates `dir` (and parents) if missing; on Unix the directory itself ends up mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let existed = dir.is_dir();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("securing {}", dir.display()), e))?;
    }
    let _ = existed;
    Ok(())
}

/// Writes `bytes` to `path` atomically with permissions `mode` (Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.{}-{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        // The mode given to open() is masked by the umask: set it as meant.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// Reads a file; `None` when it does not exist. The second value warns when group or others can
/// read it (Unix).
pub fn read_private(path: &Path) -> Result<Option<(String, Option<String>)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    Ok(Some((text, make_private(path, 0o600))))
}

/// Fixes a file or directory that group or others can access: mode `private` (0600 / 0700),
/// with a warning naming it. `None` when it was private already (or is not there).
pub fn make_private(path: &Path, private: u32) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return None;
        }
        let fixed = std::fs::set_permissions(path, std::fs::Permissions::from_mode(private));
        Some(match fixed {
            Ok(()) => format!(
                "{} was accessible to other users (mode {mode:o}): changed to {private:o}",
                path.display()
            ),
            Err(e) => format!(
                "{} is accessible to other users (mode {mode:o}) and could not be changed ({e}): run `chmod {private:o} {}`",
                path.display(),
                path.display()
            ),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, private);
        None
    }
}

/// Checks the CLI's config directory, `config.toml`, `sessions/` and every session file, and
/// makes them private (0700 / 0600). The directory itself is only changed when it holds nothing
/// but the CLI's files: `PMS_CONFIG_DIR` pointed at a shared directory is reported, not
/// changed.
pub fn secure_config_dir(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return warnings;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let ours = names
        .iter()
        .all(|n| n == "config.toml" || n == "sessions" || n.starts_with('.'));
    if ours {
        warnings.extend(make_private(dir, 0o700));
    }
    warnings.extend(make_private(&dir.join("config.toml"), 0o600));
    let sessions = dir.join("sessions");
    warnings.extend(make_private(&sessions, 0o700));
    if let Ok(files) = std::fs::read_dir(&sessions) {
        for file in files.flatten() {
            warnings.extend(make_private(&file.path(), 0o600));
        }
    }
    warnings
}

/// Removes a file; `Ok(false)` when it was not there.
pub fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dir_and_file_modes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("secret.json");
        write_atomic(&file, b"one", 0o600).unwrap();
        write_atomic(&file, b"two", 0o600).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(read_private(&file).unwrap(), Some(("two".into(), None)));
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn loose_permissions_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("s");
        write_atomic(&file, b"x", 0o600).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, warning) = read_private(&file).unwrap().unwrap();
        let warning = warning.unwrap();
        assert!(warning.contains("(mode 644): changed to 600"), "{warning}");
        assert_eq!(mode(&file), 0o600, "fixed, not just reported");
        assert_eq!(read_private(&file).unwrap().unwrap().1, None);
        assert!(remove(&file).unwrap());
        assert!(!remove(&file).unwrap());
        assert_eq!(read_private(&file).unwrap(), None);
    }

    #[test]
    fn a_loose_config_dir_is_made_private_but_a_shared_one_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pms");
        ensure_private_dir(&dir.join("sessions")).unwrap();
        std::fs::write(dir.join("config.toml"), "").unwrap();
        std::fs::write(dir.join("sessions/p.json"), "{}").unwrap();
        for (path, loose) in [
            (dir.clone(), 0o755),
            (dir.join("sessions"), 0o750),
            (dir.join("config.toml"), 0o644),
            (dir.join("sessions/p.json"), 0o640),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
        }
        let warnings = secure_config_dir(&dir);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(
            warnings[0].contains("(mode 755): changed to 700"),
            "{warnings:?}"
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("sessions")), 0o700);
        assert_eq!(mode(&dir.join("config.toml")), 0o600);
        assert_eq!(mode(&dir.join("sessions/p.json")), 0o600);
        assert!(secure_config_dir(&dir).is_empty(), "nothing left to fix");
        // A directory that also holds other things is not ours to lock.
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(secure_config_dir(&dir).is_empty());
        assert_eq!(mode(&dir), 0o755);
    }
}
