//! Runs parsed request files top to bottom through [`ApiClient::execute_raw`]: resolves
//! variables, sends, records captures, checks assertions. A request that cannot be sent (unknown
//! variable, unreachable server) is an error result; the run goes on with the next request.
//!
//! The session's `{{token}}` resolves only for requests whose origin (scheme, host, port) is the
//! session's server; elsewhere it resolves to nothing and the result carries a warning (a file
//! that sets its own `@token` or `--var token=` is taken at its word). Every result is redacted
//! (see [`super::redact`]) before anyone sees it.

use serde::Serialize;

use super::assert::Actual;
use super::parse::{Body, HttpFile, RequestSpec};
use super::redact::Redactor;
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
    /// Why the request was not run (a gRPC request); neither passed nor failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip)]
    pub response_body: String,
    /// For stderr: the session token was withheld from another origin.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl RequestResult {
    /// No error and every assertion held (also true of a skipped request: it did not fail).
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.assertions.iter().all(|a| a.passed)
    }

    /// Not run (see [`RequestResult::skipped`]).
    pub fn is_skipped(&self) -> bool {
        self.skipped.is_some()
    }
}

/// Runs request files with a shared base scope (`--var`, `baseUrl`, `token`).
pub struct Runner<'a> {
    client: &'a ApiClient,
    base: Scope,
    redactor: Redactor,
    /// The session's tokens: never sent to another origin, however a request came by them.
    session_secrets: Vec<String>,
}

/// Stands in for a withheld `{{token}}` while a request is resolved (then becomes nothing).
const WITHHELD: &str = "\u{0}pms-withheld-token\u{0}";

impl<'a> Runner<'a> {
    /// A runner; `base` holds `--var` values and the injected session variables. `secrets` are
    /// redacted from every result (the session's tokens); so are `Authorization` values and
    /// JWTs.
    pub fn new(client: &'a ApiClient, base: Scope, secrets: &[&str]) -> Runner<'a> {
        let mut redactor = Redactor::default();
        for secret in secrets {
            redactor.add(secret);
        }
        Runner {
            client,
            base,
            redactor,
            session_secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        }
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
            let mut sent_authorization = Vec::new();
            let result = self
                .run_one(file, spec, &mut scope, &mut sent_authorization)
                .await;
            let result = self.redact(result, &sent_authorization);
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
        sent_authorization: &mut Vec<String>,
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
            skipped: None,
            response_body: String::new(),
            warnings: Vec::new(),
        };
        if spec.method == super::parse::GRPC {
            result.skipped = Some(
                "gRPC request: `pms request` runs HTTP requests only (run this file with httpyac)"
                    .to_owned(),
            );
            return result;
        }
        let prepared = match self.prepare_for_origin(&result.file, spec, scope) {
            Ok((p, warning)) => {
                result.warnings.extend(warning);
                sent_authorization.extend(
                    p.headers
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                        .map(|(_, v)| v.clone()),
                );
                p
            }
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

impl Runner<'_> {
    /// Resolves a request, giving it the session's token only when it goes to the session's
    /// origin. The URL is resolved first with the token withheld, so where the request goes
    /// never depends on the token.
    fn prepare_for_origin(
        &self,
        file: &str,
        spec: &RequestSpec,
        scope: &mut Scope,
    ) -> Result<(Prepared, Option<String>), String> {
        let session_token = scope.injected.insert("token".into(), WITHHELD.into());
        let target = prepare_url(spec, scope).map(|url| url.replace(WITHHELD, ""));
        let own_origin = target
            .as_deref()
            .is_ok_and(|url| self.client.is_own_origin(url));
        if own_origin {
            if let Some(token) = &session_token {
                scope.injected.insert("token".into(), token.clone());
            }
        } else if session_token.is_none() {
            scope.injected.remove("token");
        }
        let prepared = prepare(spec, scope);
        match session_token {
            Some(token) => scope.injected.insert("token".into(), token),
            None => scope.injected.remove("token"),
        };
        let mut prepared = prepared?;
        // Elsewhere, the session's tokens are stripped however they got in (a capture of an
        // earlier request's `Authorization`, `$processEnv`, a copy in a variable).
        let mut strip = vec![WITHHELD];
        if !own_origin {
            strip.extend(self.session_secrets.iter().map(String::as_str));
        }
        let mut withheld = false;
        let mut clean = |text: &mut String| {
            for secret in strip.iter().filter(|s| !s.is_empty()) {
                if text.contains(secret) {
                    withheld = true;
                    *text = text.replace(secret, "");
                }
            }
        };
        clean(&mut prepared.url);
        for (_, value) in &mut prepared.headers {
            clean(value);
        }
        if let Some(body) = &mut prepared.body {
            clean(body);
        }
        let warning = withheld.then(|| {
            let origin = url::Url::parse(&prepared.url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|_| prepared.url.clone());
            format!(
                "{}:{}: {{{{token}}}} left empty: {origin} is not the session's server ({}); the session's token goes nowhere else (set `@token = …` in the file to send one)",
                file,
                spec.line,
                self.client.base()
            )
        });
        Ok((prepared, warning))
    }

    /// The result as it may be shown: secrets, `Authorization` values sent and JWTs redacted.
    fn redact(&self, mut result: RequestResult, sent_authorization: &[String]) -> RequestResult {
        let mut redactor = self.redactor.clone();
        for value in sent_authorization {
            redactor.add_authorization(value);
        }
        let r = |text: &mut String| *text = redactor.redact(text);
        r(&mut result.name);
        r(&mut result.url);
        r(&mut result.response_body);
        if let Some(error) = &mut result.error {
            r(error);
        }
        for assertion in &mut result.assertions {
            r(&mut assertion.assertion);
            r(&mut assertion.message);
        }
        for warning in &mut result.warnings {
            r(warning);
        }
        result
    }
}

struct Prepared {
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn prepare_url(spec: &RequestSpec, scope: &Scope) -> Result<String, String> {
    let mut url = scope.resolve(&spec.url)?;
    if url.starts_with('/') {
        url = format!("{}{url}", scope.resolve("{{baseUrl}}")?);
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an absolute http(s) URL"));
    }
    Ok(url)
}

fn prepare(spec: &RequestSpec, scope: &Scope) -> Result<Prepared, String> {
    let url = prepare_url(spec, scope)?;
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
