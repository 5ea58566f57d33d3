//! Reading input from people: prompts only on a terminal (never when stdin is a pipe), secrets
//! without echo, and `--password-stdin` for scripts. Secrets are never taken from argv.

use std::io::{BufRead, Write};

use pms_cli::{Error, Result};

use super::App;

/// Asks for a line on the terminal (prompt on stderr); `default` is used for an empty answer.
pub fn line(app: &App, label: &str, default: Option<&str>, flag: &str) -> Result<String> {
    if !app.stdin_tty {
        return Err(Error::Usage(format!(
            "{label} is required: pass {flag} (stdin is not a terminal, so pms does not prompt)"
        )));
    }
    match default {
        Some(d) => eprint!("{label} [{d}]: "),
        None => eprint!("{label}: "),
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the terminal", e))?;
    let answer = answer.trim();
    match (answer.is_empty(), default) {
        (true, Some(d)) => Ok(d.to_owned()),
        (true, None) => Err(Error::Usage(format!("{label} is required"))),
        (false, _) => Ok(answer.to_owned()),
    }
}

/// Asks `question [y/N]` on the terminal before something that cannot be undone. `--yes`
/// answers for the user; without a terminal it is required (a usage error otherwise), so a
/// script never hangs on a question nor destroys by default. A "no" is an error (exit 1):
/// nothing was done.
pub fn confirm(app: &App, question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !app.stdin_tty {
        return Err(Error::Usage(format!(
            "{question} Pass --yes to confirm (stdin is not a terminal, so pms does not ask)"
        )));
    }
    eprint!("{question} [y/N]: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the terminal", e))?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(Error::Other("cancelled: nothing was changed".into()))
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Asks for a secret on the terminal, without echo.
pub fn secret(app: &App, label: &str) -> Result<String> {
    if !app.stdin_tty {
        return Err(Error::Usage(format!(
            "no terminal to ask for the {}: pipe it with --password-stdin",
            label.to_lowercase()
        )));
    }
    let value = rpassword::prompt_password(format!("{label}: "))
        .map_err(|e| Error::io("reading the password", e))?;
    if value.is_empty() {
        return Err(Error::Usage(format!("{label} is required")));
    }
    Ok(value)
}

/// Reads `count` lines from stdin (`--password-stdin`); line endings are dropped.
pub fn stdin_lines(count: usize) -> Result<Vec<String>> {
    let mut lines = Vec::with_capacity(count);
    let stdin = std::io::stdin();
    let mut handle = stdin.lock();
    for i in 0..count {
        let mut line = String::new();
        let read = handle
            .read_line(&mut line)
            .map_err(|e| Error::io("reading stdin", e))?;
        let value = line.trim_end_matches(['\n', '\r']).to_owned();
        if read == 0 || value.is_empty() {
            return Err(Error::Usage(if count == 1 {
                "--password-stdin: stdin is empty".to_owned()
            } else {
                format!("--password-stdin: expected {count} lines on stdin, got {i}")
            }));
        }
        lines.push(value);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_confirms() {
        for yes in ["y", "Y", "yes", " YES \n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
