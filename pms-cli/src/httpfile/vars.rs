//! `{{…}}` resolution for request files. Variables come from `--var` (first), the file's
//! `@name = value` lines (resolved lazily, so they may refer to captures), and the session
//! (`baseUrl`, `token`). Captures of named requests use either syntax:
//!
//! * REST Client / DESIGN §9: `{{req.response.body.$.id}}`, `{{req.response.body.*}}`,
//!   `{{req.response.headers.ETag}}`, `{{req.request.body.$.email}}`;
//! * httpyac: `{{req.id}}` (the parsed body), `{{reqResponse.headers.etag}}`,
//!   `{{reqResponse.statusCode}}`, `{{response.…}}` (the last response).
//!
//! Dynamic values: `{{$uuid}}`, `{{$guid}}`, `{{$random.uuid}}`, `{{$randomInt min max}}`,
//! `{{$timestamp}}`, `{{$isoTimestamp}}`, `{{$datetime iso8601|rfc1123}}`, `{{$processEnv NAME}}`.

use std::collections::{BTreeMap, HashMap};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use super::assert::js_path;
use super::jsonpath;

/// A request as sent or a response as received, kept for captures.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
}

impl Message {
    /// A message with its body parsed as JSON when it is JSON.
    pub fn new(headers: Vec<(String, String)>, body: String) -> Message {
        let json = serde_json::from_str(&body).ok();
        Message {
            headers,
            body,
            json,
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// One finished exchange.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub status: u16,
    pub request: Message,
    pub response: Message,
}

/// Variables and captures visible to a request.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `--var k=v`: win over everything.
    pub cli: BTreeMap<String, String>,
    /// `@k = v` lines of the file so far (raw).
    pub file: BTreeMap<String, String>,
    /// From the session: `baseUrl`, `token`.
    pub injected: BTreeMap<String, String>,
    /// Why `{{token}}` is unavailable, when it is.
    pub token_unavailable: Option<String>,
    /// Named exchanges of this file.
    pub named: HashMap<String, Exchange>,
    /// The last exchange (httpyac's `response`).
    pub last: Option<Exchange>,
}

const MAX_DEPTH: usize = 10;

impl Scope {
    /// Replaces every `{{…}}` in `text`.
    pub fn resolve(&self, text: &str) -> Result<String, String> {
        self.resolve_at(text, 0)
    }

    fn resolve_at(&self, text: &str, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err(format!("variables nest too deeply (a cycle?) in `{text}`"));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
            let expr = after[..end].trim();
            out.push_str(&self.evaluate(expr, depth)?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn evaluate(&self, expr: &str, depth: usize) -> Result<String, String> {
        if let Some(dynamic) = expr.strip_prefix('$') {
            return dynamic_value(dynamic);
        }
        if let Some(value) = self.cli.get(expr) {
            return Ok(value.clone());
        }
        if let Some(raw) = self.file.get(expr) {
            return self.resolve_at(raw, depth + 1);
        }
        if let Some(value) = self.injected.get(expr) {
            return Ok(value.clone());
        }
        if expr == "token"
            && let Some(why) = &self.token_unavailable
        {
            return Err(why.clone());
        }
        if let Some(value) = self.capture(expr)? {
            return Ok(value);
        }
        Err(format!(
            "unknown variable `{expr}` (define it with `@{expr} = …` or --var {expr}=…)"
        ))
    }

    /// A capture expression, or `None` when `expr` names no known request.
    fn capture(&self, expr: &str) -> Result<Option<String>, String> {
        let (head, tail) = match expr.split_once('.') {
            Some((h, t)) => (h, Some(t)),
            None => (expr, None),
        };
        // REST Client: name.response.body.$.x / name.request.headers.X
        if let (Some(exchange), Some(tail)) = (self.named.get(head), tail) {
            for (part, message) in [
                ("response.", &exchange.response),
                ("request.", &exchange.request),
            ] {
                if let Some(rest) = tail.strip_prefix(part) {
                    return rest_client(message, rest).map(Some);
                }
            }
        }
        // httpyac: nameResponse.headers.x, response.statusCode
        let response_of = head
            .strip_suffix("Response")
            .and_then(|name| self.named.get(name))
            .or_else(|| (head == "response").then_some(self.last.as_ref()).flatten());
        if let Some(exchange) = response_of {
            let tail = tail.unwrap_or("");
            return match tail.split_once('.').unwrap_or((tail, "")) {
                ("statusCode", _) => Ok(Some(exchange.status.to_string())),
                ("headers", name) => {
                    Ok(Some(exchange.response.header(name).ok_or_else(|| {
                        format!("`{expr}`: the response has no `{name}` header")
                    })?))
                }
                ("body", _) => Ok(Some(exchange.response.body.clone())),
                ("parsedBody", path) => body_path(&exchange.response, path, expr).map(Some),
                _ => Err(format!(
                    "`{expr}`: expected statusCode, headers.<name>, body or parsedBody"
                )),
            };
        }
        // httpyac: name.path (the parsed body)
        if let Some(exchange) = self.named.get(head) {
            return body_path(&exchange.response, tail.unwrap_or(""), expr).map(Some);
        }
        Ok(None)
    }
}

fn rest_client(message: &Message, rest: &str) -> Result<String, String> {
    if let Some(name) = rest.strip_prefix("headers.") {
        return message
            .header(name)
            .ok_or_else(|| format!("no `{name}` header to capture"));
    }
    match rest {
        "body" | "body.*" => Ok(message.body.clone()),
        _ => {
            let path = rest.strip_prefix("body.").ok_or_else(|| {
                format!("cannot capture `{rest}`: expected body.$…, body.* or headers.<name>")
            })?;
            let json = message
                .json
                .as_ref()
                .ok_or_else(|| "the body is not JSON: cannot apply a JSONPath".to_owned())?;
            let found = jsonpath::query(json, path)?
                .ok_or_else(|| format!("`{path}` matches nothing in the body"))?;
            Ok(plain(&found))
        }
    }
}

fn body_path(message: &Message, path: &str, expr: &str) -> Result<String, String> {
    if path.is_empty() {
        return Ok(message.body.clone());
    }
    let json = message
        .json
        .as_ref()
        .ok_or_else(|| format!("`{expr}`: the body is not JSON"))?;
    js_path(json, path)?
        .map(|v| plain(&v))
        .ok_or_else(|| format!("`{expr}` matches nothing in the body"))
}

/// A JSON value as text: strings without quotes, everything else as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn dynamic_value(expr: &str) -> Result<String, String> {
    let mut words = expr.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    match name {
        "uuid" | "guid" | "random.uuid" => Ok(uuid::Uuid::new_v4().to_string()),
        "timestamp" => Ok(Utc::now().timestamp().to_string()),
        "isoTimestamp" => Ok(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        "datetime" => match args.first().copied() {
            Some("rfc1123") => Ok(Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
            Some("iso8601") | None => Ok(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
            Some(other) => Err(format!("`$datetime {other}`: use iso8601 or rfc1123")),
        },
        "randomInt" => {
            let parse = |i: usize, default: i64| {
                args.get(i).map_or(Ok(default), |a| {
                    a.parse::<i64>()
                        .map_err(|_| format!("`$randomInt`: `{a}` is not an integer"))
                })
            };
            let (min, max) = (parse(0, 0)?, parse(1, 1000)?);
            let (min, max) = if min <= max { (min, max) } else { (max, min) };
            let span = (max - min).max(1) as u128;
            Ok((min + (uuid::Uuid::new_v4().as_u128() % span) as i64).to_string())
        }
        "processEnv" => {
            let var = args.first().ok_or("`$processEnv` needs a variable name")?;
            Ok(std::env::var(var).unwrap_or_default())
        }
        _ => Err(format!("unknown dynamic variable `${expr}`")),
    }
}

#[cfg(test)]
#[path = "vars_tests.rs"]
mod tests;
