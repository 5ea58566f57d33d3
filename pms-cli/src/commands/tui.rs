//! `pms tui`: hands the terminal to `pms-tui` (the interactive UI), with the same profile and
//! server. `pms-tui` is looked up next to this `pms` executable first, then on the PATH.

use std::path::PathBuf;
use std::process::Command;

use pms_cli::{Error, Result};

/// The file name of the TUI binary on this platform.
const BINARY: &str = if cfg!(windows) {
    "pms-tui.exe"
} else {
    "pms-tui"
};

/// Where `pms-tui` is: beside `pms`, else the first match on `PATH`.
pub fn locate() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(BINARY)))
        .filter(|path| path.is_file());
    beside.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(BINARY))
            .find(|path| path.is_file())
    })
}

/// Runs `pms-tui` with `--profile` / `--server` passed on; returns only on failure (Unix
/// replaces this process) or with the TUI's exit status elsewhere.
pub fn run(profile: Option<String>, server: Option<String>) -> Result<()> {
    let Some(path) = locate() else {
        return Err(Error::NotFound(format!(
            "{BINARY} is not installed: build it with `cargo build -p pms-tui` (or install it next to `pms` or on PATH)"
        )));
    };
    let mut command = Command::new(&path);
    if let Some(profile) = profile {
        command.arg("--profile").arg(profile);
    }
    if let Some(server) = server {
        command.arg("--server").arg(server);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = command.exec();
        Err(Error::io(format!("cannot start {}", path.display()), e))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .map_err(|e| Error::io(format!("cannot start {}", path.display()), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Other(format!("{BINARY} exited with {status}")))
        }
    }
}
