//! `pms`: parses the command line, runs the command on a small Tokio runtime, prints the error
//! (one line on stderr) and exits with the code the error maps to (`pms help exit-codes`).
#![forbid(unsafe_code)]
// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod commands;

use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use commands::present::{self, ExitCode};
use pms_cli::Error;
use pms_cli::config::EnvSnapshot;

fn main() -> std::process::ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit(if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            });
        }
    };
    let env = EnvSnapshot::from_process();
    let color = std::io::stderr().is_terminal() && !env.no_color;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            print_error(
                &Error::Other(format!("cannot start the async runtime: {e}")),
                color,
            );
            return exit(ExitCode::Error);
        }
    };
    let result = runtime.block_on(commands::run(cli, env));
    // A keyring call cut off by its timeout may still hold a thread: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => exit(ExitCode::Ok),
        Err(e) if e.is_broken_pipe() => exit(ExitCode::Ok),
        Err(e) => {
            print_error(&e, color);
            exit(present::exit_code(&e))
        }
    }
}

fn print_error(e: &Error, color: bool) {
    let line = present::message(e);
    if color {
        eprintln!("\x1b[31merror:\x1b[0m {line}");
    } else {
        eprintln!("error: {line}");
    }
}

fn exit(code: ExitCode) -> std::process::ExitCode {
    std::process::ExitCode::from(code.code())
}
