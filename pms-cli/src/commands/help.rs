//! `pms help [COMMAND…|TOPIC]`: command help (as `--help`), and the topics `exit-codes` and
//! `environment`.

use clap::{Args, CommandFactory};
use pms_cli::{Error, Result};

use super::present::ExitCode;

use super::Cli;
use super::completion::write_stdout;

#[derive(Debug, Args)]
pub struct HelpArgs {
    /// A command (`patients list`) or a topic: exit-codes, environment.
    pub topic: Vec<String>,
}

/// The `exit-codes` topic.
pub fn exit_codes() -> String {
    let mut out = String::from("Exit codes of pms:\n\n");
    for (code, meaning) in ExitCode::ALL {
        out.push_str(&format!("  {}  {meaning}\n", code.code()));
    }
    out.push_str(
        "\nScripts can rely on them:\n  pms patients get \"$id\" >/dev/null; case $? in 0) ;; 3) echo \"no such patient\" ;; *) exit 1 ;; esac\n",
    );
    out
}

const ENVIRONMENT: &str = "Environment variables of pms:

  PMS_SERVER        gateway URL (like --server); with PMS_TOKEN, the CI path. Without a
                    scheme: http:// for this machine, https:// for any other host (plain
                    http:// to another host is warned about)
  PMS_TOKEN         an access token to use instead of any stored session; never written anywhere
  PMS_PROFILE       profile name (like --profile); each profile has its own server and session
  PMS_CONFIG_DIR    config directory [default: $XDG_CONFIG_HOME/pms, else ~/.config/pms]
  PMS_TOKEN_STORE   where `pms login` keeps the session:
                      auto     OS keyring (Secret Service, then the kernel keyring on Linux;
                               Keychain; Credential Manager), else a 0600 file with a warning
                      keyring  OS keyring only: login fails rather than write a file
                      file     a 0600 file in the config directory only
  PMS_KEYRING_TIMEOUT  seconds one keyring call may take [default: 10]
  PMS_KEYRING_BACKEND  keyring backends to try, comma-separated, in order of preference
                    (Linux: secret-service,keyutils; macOS: keychain; Windows:
                    credential-manager), or `none` [default: all of this platform's]
  NO_COLOR          no colour, even on a terminal

Files: <config dir>/config.toml (profiles: server, email, which store holds the session; no
secrets) and <config dir>/sessions/<profile>.json (only when the session is kept in a file);
the directory is 0700 and the files 0600, fixed with a warning when found looser. Keyring
entries are named <profile>@<server>, plus the config dir's hash when PMS_CONFIG_DIR is not
the default.
";

pub fn run(args: &HelpArgs) -> Result<()> {
    let topic: Vec<&str> = args.topic.iter().map(String::as_str).collect();
    match topic.as_slice() {
        ["exit-codes"] | ["exit-code"] | ["exit"] => write_stdout(exit_codes().as_bytes()),
        ["environment"] | ["env"] => write_stdout(ENVIRONMENT.as_bytes()),
        path => {
            let mut command = Cli::command();
            command.build();
            let mut current = &mut command;
            for name in path {
                current = current.find_subcommand_mut(name).ok_or_else(|| {
                    Error::Usage(format!(
                        "no help for `{}`: try `pms --help`, `pms help exit-codes` or `pms help environment`",
                        path.join(" ")
                    ))
                })?;
            }
            write_stdout(current.render_long_help().to_string().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_page_and_completions_generate() {
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.starts_with(".ie \\n(.g .ds Aq"), "roff");
        assert!(man.contains(".TH pms 1"), "{}", &man[..200]);
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pms", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(
                script.contains("patients"),
                "{shell}: subcommands completed"
            );
            assert!(
                script.contains("from-file"),
                "{shell}: nested flags completed"
            );
        }
    }

    #[test]
    fn exit_code_topic_lists_every_code() {
        let text = exit_codes();
        for code in 0..=6 {
            assert!(text.contains(&format!("\n  {code}  ")), "{text}");
        }
        assert!(text.contains("not found (HTTP 404)"));
    }
}
