//! The raw exchange behind `pms request`: a request sent exactly as the file says (no token
//! added, no status mapping), through the same HTTP client and so the same redirect policy.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{ApiClient, REQUEST_TIMEOUT, transport_error};
use crate::error::{Error, Result};

/// A raw exchange (`pms request`): whatever the server answered, error statuses included.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl ApiClient {
    /// Sends a request exactly as given (no token added, no status mapping): `pms request`.
    pub async fn execute_raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse> {
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| Error::Usage(format!("invalid header name `{name}`")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| Error::Usage(format!("invalid value for header `{name}`")))?;
            header_map.append(name, value);
        }
        let mut builder = self
            .inner
            .http
            .request(method, url)
            .headers(header_map)
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let started = Instant::now();
        let response = builder.send().await.map_err(|e| transport_error(url, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(url, e))?
            .to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }
}
