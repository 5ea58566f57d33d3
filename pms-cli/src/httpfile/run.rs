//! Runs parsed request files top to bottom through [`ApiClient::execute_raw`]: resolves
//! variables, sends, records captures, checks assertions. A request that cannot be sent (unknown
//! variable, unreachable server) is an error result; the run goes on with the next request.

use serde::Serialize;

use super::assert::Actual;
use super::parse::{Body, HttpFile, RequestSpec};
use super::vars::{Exchange, Message, Scope};
use crate::api::ApiClient;

/// One assertion's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssertionResult {
    /// The line as written, after `??`.
    pub assertion: String,
    pub passed: bool,
    /// Why it failed (actual vs expected), empty when it passed.
    pub message: String,
}

/// One request's outcome (`pms request -o json` prints an array of these).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestResult {
    pub file: String,
    /// `# @name`, else the `###` title, else `METHOD URL`.
    pub name: String,
    pub line: usize,
    pub method: String,
    /// The URL as sent (variables resolved).
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub assertions: Vec<AssertionResult>,
    /// Why the request could not be run.
    pub error: Option<String>,
    #[serde(skip)]
    pub response_body: String,
}

impl RequestResult {
    /// No error and every assertion held.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.assertions.iter().all(|a| a.passed)
    }
}

/// Runs request files with a shared base scope (`--var`, `baseUrl`, `token`).
pub struct Runner<'a> {
    client: &'a ApiClient,
    base: Scope,
}

impl<'a> Runner<'a> {
    /// A runner; `base` holds `--var` values and the injected session variables.
    pub fn new(client: &'a ApiClient, base: Scope) -> Runner<'a> {
        Runner { client, base }
    }

    /// Runs every request of `file` in order; `on_result` sees each result as it completes.
    pub async fn run_file(
        &self,
        file: &HttpFile,
        mut on_result: impl FnMut(&RequestResult),
    ) -> Vec<RequestResult> {
        let mut scope = self.base.clone();
        let mut results = Vec::new();
        for spec in &file.requests {
            for (name, value) in &spec.variables {
                scope.file.insert(name.clone(), value.clone());
            }
            let result = self.run_one(file, spec, &mut scope).await;
            on_result(&result);
            results.push(result);
        }
        results
    }

    async fn run_one(
        &self,
        file: &HttpFile,
        spec: &RequestSpec,
        scope: &mut Scope,
    ) -> RequestResult {
        let mut result = RequestResult {
            file: file.path.display().to_string(),
            name: spec.label(),
            line: spec.line,
            method: spec.method.clone(),
            url: spec.url.clone(),
            status: None,
            duration_ms: 0,
            assertions: Vec::new(),
            error: None,
            response_body: String::new(),
        };
        let prepared = match prepare(spec, scope) {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        result.url = prepared.url.clone();
        let method = match reqwest::Method::from_bytes(spec.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                result.error = Some(format!("invalid method `{}`", spec.method));
                return result;
            }
        };
        let body = prepared.body.clone().map(String::into_bytes);
        let response = match self
            .client
            .execute_raw(method, &prepared.url, &prepared.headers, body)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                result.error = Some(e.to_string());
                return result;
            }
        };
        result.status = Some(response.status);
        result.duration_ms = u64::try_from(response.elapsed.as_millis()).unwrap_or(u64::MAX);
        let text = String::from_utf8_lossy(&response.body).into_owned();
        result.response_body = text.clone();
        let exchange = Exchange {
            status: response.status,
            request: Message::new(prepared.headers.clone(), prepared.body.unwrap_or_default()),
            response: Message::new(response.headers.clone(), text),
        };
        let actual = Actual {
            status: response.status,
            duration_ms: response.elapsed.as_millis(),
            headers: &exchange.response.headers,
            body_text: &exchange.response.body,
            body_json: exchange.response.json.as_ref(),
        };
        for assertion in &spec.assertions {
            let outcome = match (
                scope.resolve(&assertion.expected),
                assertion.actual(&actual),
            ) {
                (Err(e), _) | (_, Err(e)) => AssertionResult {
                    assertion: assertion.text.clone(),
                    passed: false,
                    message: e,
                },
                (Ok(expected), Ok(value)) => {
                    let passed = assertion.check(value.as_ref(), &expected);
                    let shown = value
                        .as_ref()
                        .map(super::vars::plain)
                        .unwrap_or_else(|| "undefined".into());
                    AssertionResult {
                        assertion: assertion.text.clone(),
                        passed,
                        message: if passed {
                            String::new()
                        } else {
                            format!("actual: {}", truncate(&shown, 200))
                        },
                    }
                }
            };
            result.assertions.push(outcome);
        }
        if let Some(name) = &spec.name {
            scope.named.insert(name.clone(), exchange.clone());
        }
        scope.last = Some(exchange);
        result
    }
}

struct Prepared {
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn prepare(spec: &RequestSpec, scope: &Scope) -> Result<Prepared, String> {
    let mut url = scope.resolve(&spec.url)?;
    if url.starts_with('/') {
        url = format!("{}{url}", scope.resolve("{{baseUrl}}")?);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an absolute http(s) URL"));
    }
    let headers = spec
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), scope.resolve(v)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let body = match &spec.body {
        None => None,
        Some(Body::Text(text)) => Some(scope.resolve(text)?),
        Some(Body::File(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read body file {}: {e}", path.display()))?;
            Some(scope.resolve(&text)?)
        }
    };
    Ok(Prepared { url, headers, body })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
