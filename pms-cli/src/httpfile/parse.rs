//! Parser for `.http` request files, the format shared by the VS Code REST Client, the JetBrains
//! HTTP client and httpyac: requests separated by `###`, `@name = value` variables, `# @name`
//! request names, `METHOD URL` + headers + blank line + body, and httpyac-style `?? …`
//! assertions. Everything is kept as written (`{{…}}` is resolved when the request runs).

use std::path::{Path, PathBuf};

use super::assert::Assertion;

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFile {
    pub path: PathBuf,
    pub requests: Vec<RequestSpec>,
    /// Variables defined after the last request (kept for completeness).
    pub trailing_variables: Vec<(String, String)>,
}

/// One request block.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// `# @name x` (captures are addressed as `{{x.response…}}`).
    pub name: Option<String>,
    /// The text after `###`, if any.
    pub title: Option<String>,
    /// 1-based line of the request line.
    pub line: usize,
    /// `@var = value` lines seen since the previous request, in order.
    pub variables: Vec<(String, String)>,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub assertions: Vec<Assertion>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Inline text.
    Text(String),
    /// `< ./file.json`: read from a file next to the `.http` file.
    File(PathBuf),
}

impl RequestSpec {
    /// A label for reports: the `###` title, else the name, else `METHOD URL` (as httpyac).
    pub fn label(&self) -> String {
        self.title
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| format!("{} {}", self.method, self.url))
    }
}

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

/// The method of httpyac's gRPC requests (`GRPC host:port/Service/Method`).
pub const GRPC: &str = "GRPC";

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses the text of `path`.
pub fn parse(path: &Path, text: &str) -> Result<HttpFile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut requests = Vec::new();
    let mut pending_vars = Vec::new();
    let mut block_start = 0;
    let mut title = None;
    let mut i = 0;
    while i <= lines.len() {
        let at_separator = i < lines.len() && lines[i].trim_start().starts_with("###");
        if i == lines.len() || at_separator {
            if let Some(request) = parse_block(
                path,
                &lines,
                block_start,
                i,
                title.take(),
                &mut pending_vars,
            )? {
                requests.push(request);
            }
            if at_separator {
                let rest = lines[i].trim_start().trim_start_matches('#').trim();
                title = (!rest.is_empty()).then(|| rest.to_owned());
            }
            block_start = i + 1;
        }
        i += 1;
    }
    Ok(HttpFile {
        path: path.to_owned(),
        requests,
        trailing_variables: pending_vars,
    })
}

fn variable(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('@')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    valid.then(|| (name.to_owned(), value.trim().to_owned()))
}

/// `# @name x`, `// @name x`, `# @name=x`.
fn name_tag(line: &str) -> Option<String> {
    let comment = line.strip_prefix('#').or_else(|| line.strip_prefix("//"))?;
    let rest = comment.trim_start().strip_prefix("@name")?;
    let name = rest.trim_start_matches([' ', '=']).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// httpyac's `proto < ./file.proto` (a gRPC request's message types): nothing for HTTP requests.
fn is_import(line: &str) -> bool {
    line.strip_prefix("proto")
        .is_some_and(|rest| rest.trim_start().starts_with('<'))
}

fn is_comment(line: &str) -> bool {
    line.starts_with('#') || line.starts_with("//")
}

fn parse_block(
    path: &Path,
    lines: &[&str],
    start: usize,
    end: usize,
    title: Option<String>,
    pending_vars: &mut Vec<(String, String)>,
) -> Result<Option<RequestSpec>, ParseError> {
    let error = |line: usize, message: String| ParseError {
        file: path.display().to_string(),
        line: line + 1,
        message,
    };
    let mut name = None;
    let mut assertions = Vec::new();
    let mut i = start;
    // Preamble: names, comments, variables, assertions; then the request line.
    let request_line = loop {
        if i >= end {
            return Ok(None);
        }
        let line = lines[i].trim();
        if line.is_empty() {
        } else if let Some(n) = name_tag(line) {
            name = Some(n);
        } else if let Some(text) = line.strip_prefix("??") {
            assertions.push(Assertion::parse(text).map_err(|m| error(i, m))?);
        } else if is_comment(line) || is_import(line) {
        } else if let Some(var) = variable(line) {
            pending_vars.push(var);
        } else {
            break i;
        }
        i += 1;
    };
    let (method, mut url) = request_target(lines[request_line].trim()).ok_or_else(|| {
        error(
            request_line,
            format!(
                "expected `METHOD URL`, found `{}`",
                lines[request_line].trim()
            ),
        )
    })?;
    i += 1;
    // Multi-line query continuation (REST Client): lines starting with `?` or `&`.
    while i < end
        && matches!(lines[i].trim_start().chars().next(), Some('?' | '&'))
        && !lines[i].trim_start().starts_with("??")
    {
        url.push_str(lines[i].trim());
        i += 1;
    }
    let mut headers = Vec::new();
    while i < end && !lines[i].trim().is_empty() {
        let line = lines[i].trim();
        if let Some(text) = line.strip_prefix("??") {
            assertions.push(Assertion::parse(text).map_err(|m| error(i, m))?);
        } else if is_comment(line) {
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        } else {
            return Err(error(
                i,
                format!("expected a header `Name: value`, found `{line}`"),
            ));
        }
        i += 1;
    }
    let mut body_lines = Vec::new();
    let mut in_script = false;
    for (offset, raw) in lines[i.min(end)..end].iter().enumerate() {
        let line = raw.trim();
        if in_script {
            in_script = !line.ends_with("%}");
            continue;
        }
        if line.starts_with("> {%") {
            in_script = !line.ends_with("%}");
            continue;
        }
        if let Some(text) = line.strip_prefix("??") {
            let at = i + offset;
            assertions.push(Assertion::parse(text).map_err(|m| error(at, m))?);
            continue;
        }
        if name_tag(line).is_some()
            || (line.starts_with('#') && body_lines.iter().all(|l: &&str| l.trim().is_empty()))
        {
            continue;
        }
        body_lines.push(*raw);
    }
    while body_lines.last().is_some_and(|l| l.trim().is_empty()) {
        body_lines.pop();
    }
    while body_lines.first().is_some_and(|l| l.trim().is_empty()) {
        body_lines.remove(0);
    }
    let body = if body_lines.is_empty() {
        None
    } else if body_lines.len() == 1 && body_lines[0].trim_start().starts_with("< ") {
        let file = body_lines[0].trim_start()[2..].trim();
        let base = path.parent().unwrap_or(Path::new("."));
        Some(Body::File(base.join(file)))
    } else {
        Some(Body::Text(body_lines.join("\n")))
    };
    Ok(Some(RequestSpec {
        name,
        title,
        line: request_line + 1,
        variables: std::mem::take(pending_vars),
        method,
        url,
        headers,
        body,
        assertions,
    }))
}

/// `GET url HTTP/1.1`, `POST url`, or a bare `url` (GET).
fn request_target(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let first = parts.next()?;
    let (method, url) = if METHODS.contains(&first.to_ascii_uppercase().as_str())
        // httpyac's gRPC form, `GRPC host:port/Service/Method`: parsed so that the runner can
        // say it skips it.
        || first.eq_ignore_ascii_case(GRPC)
    {
        (first.to_ascii_uppercase(), parts.next()?.to_owned())
    } else if first.contains("://") || first.starts_with("{{") || first.starts_with('/') {
        ("GET".to_owned(), first.to_owned())
    } else {
        return None;
    };
    match parts.next() {
        None => {}
        Some(version) if version.starts_with("HTTP/") => {}
        Some(_) => return None,
    }
    if parts.next().is_some() {
        return None;
    }
    Some((method, url))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
