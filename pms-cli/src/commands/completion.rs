//! `pms completion SHELL`: a completion script on stdout
//! (`pms completion bash > /etc/bash_completion.d/pms`, `pms completion zsh > "${fpath[1]}/_pms"`,
//! `pms completion fish > ~/.config/fish/completions/pms.fish`,
//! `pms completion powershell >> $PROFILE`).

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use pms_cli::{Error, Result};

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, powershell or elvish.
    pub shell: Shell,
}

pub fn run(args: &CompletionArgs) -> Result<()> {
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "pms", &mut buffer);
    write_stdout(&buffer)
}

pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}
