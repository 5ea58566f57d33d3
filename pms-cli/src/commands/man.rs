//! `pms man`: man pages (roff), generated from the same definitions as `--help`. Without
//! `--dir` the page of `pms` itself goes to stdout; with it, one page per command and subcommand
//! (`pms.1`, `pms-login.1`, `pms-patients-list.1`, …) is written into the directory, so every
//! page the `SUBCOMMANDS` sections refer to exists.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use pms_cli::{Error, Result};

use super::Cli;

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page (pms.1 and one per subcommand) into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.dir else {
        let mut buffer = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut buffer)
            .map_err(|e| Error::io("rendering the man page", e))?;
        return super::completion::write_stdout(&buffer);
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "--dir: {} is not a directory (create it first)",
            dir.display()
        )));
    }
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| Error::io(format!("writing man pages to {}", dir.display()), e))?;
    let pages = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".1"))
        .count();
    eprintln!("Wrote {pages} man pages to {}.", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_gets_a_page_with_one_name() {
        let dir = tempfile::tempdir().unwrap();
        run(&ManArgs {
            dir: Some(dir.path().to_owned()),
        })
        .unwrap();
        for page in [
            "pms.1",
            "pms-login.1",
            "pms-patients-list.1",
            "pms-billing-invoices-pay.1",
            "pms-patients-deleted.1",
            "pms-patients-restore.1",
            "pms-auth-audit.1",
            "pms-audit.1",
            "pms-analytics-registrations.1",
            "pms-analytics-events.1",
        ] {
            assert!(dir.path().join(page).is_file(), "{page} missing");
        }
        let main = std::fs::read_to_string(dir.path().join("pms.1")).unwrap();
        assert!(main.contains("pms \\- The PMS command line"), "{main}");
        assert!(!main.contains("pms \\- pms"), "NAME repeats the name");
        let list = std::fs::read_to_string(dir.path().join("pms-patients-list.1")).unwrap();
        assert!(
            list.contains("pms\\-patients\\-list \\- List patients"),
            "{list}"
        );
    }
}
