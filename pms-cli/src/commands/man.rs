//! `pms man`: the man page (roff) on stdout, generated from the same definitions as `--help`.

use clap::CommandFactory;
use pms_cli::{Error, Result};

use super::Cli;

pub fn run() -> Result<()> {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buffer)
        .map_err(|e| Error::io("rendering the man page", e))?;
    super::completion::write_stdout(&buffer)
}
