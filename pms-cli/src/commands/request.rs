//! `pms request FILE.http…`: runs request files top to bottom (DESIGN §9), with `{{baseUrl}}`
//! and `{{token}}` from the session (the token only for requests to the session's own origin).
//! Prints one line per request (and the failed assertions), writes a JUnit report (mode 0600) on
//! request, and exits 1 when any request failed. Tokens and `Authorization` values never appear
//! in what it prints or writes.

use std::path::{Path, PathBuf};

use clap::Args;
use pms_cli::httpfile::{self, RequestResult, Runner, Scope, junit};
use pms_cli::output::{self, Format};
use pms_cli::{Error, Result};

use super::App;

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// `.http` files, directories (every `*.http` below), or quoted globs (`'api-requests/**/*.http'`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Set a variable (wins over the file's `@name = value`): --var patientId=…
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Write a report: `junit` (to junit.xml) or `junit=PATH`.
    #[arg(long, value_name = "junit[=PATH]", value_parser = parse_report)]
    pub report: Option<PathBuf>,
    /// Also print each response body.
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_var(raw: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}`: expected NAME=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("`{raw}`: empty variable name"));
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// The report's directory must exist and be a directory (the file itself is written at the end).
fn check_report_dir(path: &std::path::Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--report: directory {} does not exist (create it first: mkdir -p {})",
            dir.display(),
            dir.display()
        )))
    }
}

fn parse_report(raw: &str) -> std::result::Result<PathBuf, String> {
    match raw.split_once('=') {
        None if raw == "junit" => Ok(PathBuf::from("junit.xml")),
        Some(("junit", path)) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("`{raw}`: expected junit or junit=PATH")),
    }
}

pub async fn run(app: &App, args: RequestArgs) -> Result<()> {
    super::reject_csv(app.style, "request")?;
    if let Some(path) = &args.report {
        // Requests have side effects: find out the report cannot be written before sending any.
        check_report_dir(path)?;
    }
    let paths = expand(&args.files)?;
    let mut files = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        files.push(httpfile::parse(path, &text).map_err(|e| Error::Usage(e.to_string()))?);
    }
    let mut scope = Scope {
        cli: args.vars.into_iter().collect(),
        ..Scope::default()
    };
    let mut secrets = Vec::new();
    let client = match app.ctx.client() {
        Ok((client, _)) => {
            if let Some(session) = client.session().await {
                secrets.push(session.refresh_token);
            }
            match client.access_token().await {
                Ok(Some(token)) => {
                    secrets.push(token.clone());
                    scope.injected.insert("token".into(), token);
                }
                Ok(None) => {}
                Err(e) => {
                    scope.token_unavailable =
                        Some(format!("{{{{token}}}}: {}", super::present::message(&e)))
                }
            }
            client
        }
        Err(e @ (Error::NotLoggedIn { .. } | Error::ServerMismatch { .. })) => {
            scope.token_unavailable = Some(format!(
                "{{{{token}}}} needs a session: {}",
                super::present::message(&e)
            ));
            app.ctx.anonymous_client(&app.ctx.server())?
        }
        Err(e) => return Err(e),
    };
    scope
        .injected
        .insert("baseUrl".into(), client.base().to_owned());
    if let Some(session) = client.session().await {
        // After a refresh the old access token may still be valid for a while.
        secrets.push(session.access_token);
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let runner = Runner::new(&client, scope, &secrets);
    let human = app.style.format != Format::Json;
    let mut all: Vec<(String, Vec<RequestResult>)> = Vec::new();
    for file in &files {
        if human {
            app.print(&format!("{}\n", file.path.display()))?;
        }
        let mut print_error = None;
        let results = runner
            .run_file(file, |r| {
                for warning in &r.warnings {
                    (app.ctx.warn)(warning);
                }
                if human
                    && print_error.is_none()
                    && let Err(e) = app.print(&line(r, app.style.color, args.verbose))
                {
                    print_error = Some(e);
                }
            })
            .await;
        if let Some(e) = print_error {
            return Err(e);
        }
        all.push((file.path.display().to_string(), results));
    }
    let results: Vec<&RequestResult> = all.iter().flat_map(|(_, r)| r).collect();
    let failed = results.iter().filter(|r| !r.passed()).count();
    let skipped = results.iter().filter(|r| r.is_skipped()).count();
    if let Some(path) = &args.report {
        // Private like every file the CLI writes: a report is about the user's requests.
        pms_cli::credentials::file::write_atomic(path, junit::render(&all).as_bytes(), 0o600)?;
    }
    if human {
        // Skipped requests are counted apart: neither passed nor failed.
        let skipped_note = if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        };
        app.print(&format!(
            "{} passed, {failed} failed{skipped_note}\n",
            results.len() - failed - skipped
        ))?;
    } else {
        app.print(&output::json(&results)?)?;
    }
    if failed > 0 {
        return Err(Error::Other(format!(
            "{failed} of {} requests failed",
            results.len()
        )));
    }
    Ok(())
}

fn line(r: &RequestResult, color: bool, verbose: bool) -> String {
    let (ok, bad) = if color {
        ("\x1b[32m✓\x1b[0m", "\x1b[31m✗\x1b[0m")
    } else {
        ("✓", "✗")
    };
    if let Some(reason) = &r.skipped {
        return format!(
            "  - {} — {} {} → skipped: {reason}\n",
            r.name, r.method, r.url
        );
    }
    let mark = if r.passed() { ok } else { bad };
    let outcome = match (&r.error, r.status) {
        (Some(e), _) => format!("error: {e}"),
        (None, Some(s)) => format!("{s} ({} ms)", r.duration_ms),
        (None, None) => String::new(),
    };
    let mut out = format!("  {mark} {} — {} {} → {outcome}\n", r.name, r.method, r.url);
    for a in r.assertions.iter().filter(|a| !a.passed) {
        out.push_str(&format!(
            "      {bad} ?? {}  ({})\n",
            a.assertion, a.message
        ));
    }
    if verbose && !r.response_body.is_empty() {
        for body_line in r.response_body.lines() {
            out.push_str(&format!("      | {body_line}\n"));
        }
    }
    out
}

/// Files, directories (every `*.http` below, sorted) and globs (`*`, `?`, `**`).
fn expand(args: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if arg.contains(['*', '?']) {
            let found = glob(arg)?;
            if found.is_empty() {
                return Err(Error::Usage(format!("`{arg}` matches no file")));
            }
            out.extend(found);
        } else if path.is_dir() {
            let mut found = walk(path)?;
            found.retain(|p| p.extension().is_some_and(|e| e == "http"));
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "{arg}: no .http files in this directory"
                )));
            }
            out.extend(found);
        } else if path.is_file() {
            out.push(path.to_owned());
        } else {
            return Err(Error::Usage(format!("{arg}: no such file")));
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            out.extend(walk(&entry)?);
        } else {
            out.push(entry);
        }
    }
    Ok(out)
}

fn glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let fixed = parts.iter().take_while(|p| !p.contains(['*', '?'])).count();
    let root = if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    };
    let base = parts[..fixed].iter().fold(root, |acc, p| acc.join(p));
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let rest = &parts[fixed..];
    let mut found = Vec::new();
    for file in walk(&base)? {
        let rel = file.strip_prefix(&base).unwrap_or(&file);
        let comps: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if matches_parts(rest, &comps) {
            let shown = if pattern.starts_with("./") || pattern.starts_with('/') {
                file.clone()
            } else {
                file.strip_prefix(".")
                    .map(Path::to_path_buf)
                    .unwrap_or(file.clone())
            };
            found.push(shown);
        }
    }
    Ok(found)
}

fn matches_parts(pattern: &[&str], path: &[String]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            matches_parts(&pattern[1..], path)
                || (!path.is_empty() && matches_parts(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => wildcard(p, s) && matches_parts(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) => a == b && go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_directories() {
        assert!(wildcard("*.http", "auth.http"));
        assert!(!wildcard("*.http", "auth.json"));
        assert!(wildcard("p?tients.http", "patients.http"));
        let pat = ["**", "*.http"];
        assert!(matches_parts(&pat, &["auth".into(), "auth.http".into()]));
        assert!(matches_parts(&pat, &["top.http".into()]));
        assert!(!matches_parts(&pat, &["auth".into(), "notes.md".into()]));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/z.http"), "").unwrap();
        std::fs::write(dir.path().join("a.http"), "").unwrap();
        std::fs::write(dir.path().join("b/readme.md"), "").unwrap();
        let root = dir.path().display().to_string();
        let found = expand(&[format!("{root}/**/*.http")]).unwrap();
        assert_eq!(
            found,
            vec![dir.path().join("a.http"), dir.path().join("b/z.http")]
        );
        assert_eq!(
            expand(std::slice::from_ref(&root)).unwrap(),
            found,
            "a directory means every .http below"
        );
        assert!(expand(&[format!("{root}/*.nope")]).is_err());
        assert!(expand(&[format!("{root}/missing.http")]).is_err());
    }

    #[test]
    fn var_and_report_flags() {
        assert_eq!(parse_var("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_var("novalue").is_err());
        assert_eq!(parse_report("junit").unwrap(), PathBuf::from("junit.xml"));
        assert_eq!(
            parse_report("junit=out/r.xml").unwrap(),
            PathBuf::from("out/r.xml")
        );
        assert!(parse_report("html=x").is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(check_report_dir(&dir.path().join("r.xml")).is_ok());
        assert!(check_report_dir(std::path::Path::new("junit.xml")).is_ok());
        let missing = check_report_dir(&dir.path().join("out/r.xml")).unwrap_err();
        assert!(
            missing.to_string().contains("out does not exist"),
            "{missing}"
        );
    }
}
