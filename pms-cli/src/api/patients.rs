//! Patient endpoints (`/api/patients*`, deleted patients and restore included) and the audit log
//! (`/api/audit`, ADMIN, with its filters).

use pms_proto::rest::{AuditEntry, Patient, PatientDeletion, PatientRequest, PatientVersion};
use reqwest::Method;
use reqwest::header::{ETAG, HeaderName, IF_MATCH};

/// RFC 7240 `Prefer`.
const PREFER: HeaderName = HeaderName::from_static("prefer");
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{ApiClient, ApiRequest, Page, next_link};
use crate::error::{Error, Result};

/// Filters and paging of `GET /api/patients`.
#[derive(Debug, Clone, Default)]
pub struct PatientQuery {
    /// Case-insensitive prefix of name, email or MRN.
    pub q: Option<String>,
    /// Page size (server default 100, max 1000).
    pub limit: Option<u32>,
    /// `createdAt`, `-createdAt`, `name`, `-name`.
    pub sort: Option<String>,
    /// Opaque cursor of a page.
    pub cursor: Option<String>,
}

/// Filters and paging of `GET /api/audit` (they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub patient: Option<Uuid>,
    /// The acting user's id.
    pub actor: Option<Uuid>,
    /// An action name: `patient.read`, `patient.update`, …
    pub action: Option<String>,
    /// At or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub limit: Option<u32>,
    /// Opaque cursor of a page.
    pub cursor: Option<String>,
}

/// A patient with its `ETag` (the version to send back in `If-Match`).
#[derive(Debug, Clone)]
pub struct Tagged<T> {
    pub value: T,
    pub etag: Option<String>,
}

impl ApiClient {
    /// Fetches one page of a list endpoint.
    pub async fn page<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<Page<T>> {
        let response = self.send(request).await?;
        let next = next_link(response.headers());
        let items = response.json().await?;
        Ok(Page { items, next })
    }

    /// Fetches a list: the first page, and every following one when `all`.
    pub async fn pages<T: DeserializeOwned>(
        &self,
        first: ApiRequest,
        all: bool,
    ) -> Result<Page<T>> {
        let mut page = self.page::<T>(first).await?;
        if !all {
            return Ok(page);
        }
        while let Some(next) = page.next.take() {
            self.check_same_server(&next)?;
            let more = self.page::<T>(ApiRequest::new(Method::GET, next)).await?;
            page.items.extend(more.items);
            page.next = more.next;
        }
        Ok(page)
    }

    /// A next-page link must stay on the client's origin (parsed scheme, host and port; never
    /// a string prefix): the request carries the session's token.
    fn check_same_server(&self, target: &str) -> Result<()> {
        let absolute = super::origin::resolve(&self.base_url(), target)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| target.to_owned());
        if !self.is_own_origin(&absolute) {
            return Err(Error::Other(format!(
                "refusing to follow a next-page link to another origin: {target} (the server is {})",
                self.base()
            )));
        }
        Ok(())
    }

    /// `GET /api/patients`.
    pub async fn list_patients(&self, query: &PatientQuery, all: bool) -> Result<Page<Patient>> {
        self.patient_pages("/api/patients", query, all).await
    }

    /// `GET /api/patients/deleted`: soft-deleted patients (`updatedAt` = when deleted).
    pub async fn list_deleted_patients(
        &self,
        query: &PatientQuery,
        all: bool,
    ) -> Result<Page<Patient>> {
        self.patient_pages("/api/patients/deleted", query, all)
            .await
    }

    async fn patient_pages(
        &self,
        path: &str,
        query: &PatientQuery,
        all: bool,
    ) -> Result<Page<Patient>> {
        let mut request = ApiRequest::new(Method::GET, path);
        if let Some(q) = &query.q {
            request = request.query("q", q);
        }
        if let Some(limit) = query.limit {
            request = request.query("limit", limit);
        }
        if let Some(sort) = &query.sort {
            request = request.query("sort", sort);
        }
        if let Some(cursor) = &query.cursor {
            request = request.query("cursor", cursor);
        }
        self.pages(request, all).await
    }

    /// `GET /api/patients/{id}` with its ETag.
    pub async fn get_patient(&self, id: Uuid) -> Result<Tagged<Patient>> {
        let response = self
            .send(
                ApiRequest::new(Method::GET, format!("/api/patients/{id}"))
                    .about(format!("patient {id}")),
            )
            .await?;
        let etag = header_string(response.headers(), &ETAG);
        Ok(Tagged {
            value: response.json().await?,
            etag,
        })
    }

    /// `POST /api/patients` → 201.
    pub async fn create_patient(&self, body: &PatientRequest) -> Result<Patient> {
        self.send(ApiRequest::new(Method::POST, "/api/patients").json(body))
            .await?
            .json()
            .await
    }

    /// `PUT /api/patients/{id}`; `if_match` is an ETag (`"3"`) — 412 when stale.
    pub async fn update_patient(
        &self,
        id: Uuid,
        body: &PatientRequest,
        if_match: Option<&str>,
    ) -> Result<Tagged<Patient>> {
        let mut request = ApiRequest::new(Method::PUT, format!("/api/patients/{id}"))
            .json(body)
            .about(format!("patient {id}"));
        if let Some(tag) = if_match {
            request = request.header(IF_MATCH, tag);
        }
        tagged(self.send(request).await?).await
    }

    /// `DELETE /api/patients/{id}` (soft delete) with `Prefer: return=representation`: the
    /// deleted patient and what becomes of its billing account (`None` from a server that
    /// answers 204 without a body).
    pub async fn delete_patient(&self, id: Uuid) -> Result<Option<PatientDeletion>> {
        let response = self
            .send(
                ApiRequest::new(Method::DELETE, format!("/api/patients/{id}"))
                    .header(PREFER, "return=representation")
                    .about(format!("patient {id}")),
            )
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        response.json().await.map(Some)
    }

    /// `POST /api/patients/{id}/restore`: a deleted patient is live again (409 when a live
    /// patient has its email now).
    pub async fn restore_patient(
        &self,
        id: Uuid,
        if_match: Option<&str>,
    ) -> Result<Tagged<Patient>> {
        let mut request = ApiRequest::new(Method::POST, format!("/api/patients/{id}/restore"))
            .about(format!("deleted patient {id}"));
        if let Some(tag) = if_match {
            request = request.header(IF_MATCH, tag);
        }
        tagged(self.send(request).await?).await
    }

    /// `GET /api/patients/{id}/history`: every version, oldest first.
    pub async fn patient_history(&self, id: Uuid) -> Result<Vec<PatientVersion>> {
        self.send(
            ApiRequest::new(Method::GET, format!("/api/patients/{id}/history"))
                .about(format!("patient {id}")),
        )
        .await?
        .json()
        .await
    }

    /// `GET /api/audit` (ADMIN), optionally for one patient.
    pub async fn audit(
        &self,
        patient: Option<Uuid>,
        limit: Option<u32>,
        all: bool,
    ) -> Result<Page<AuditEntry>> {
        let filter = AuditFilter {
            patient,
            limit,
            ..AuditFilter::default()
        };
        self.audit_filtered(&filter, all).await
    }

    /// `GET /api/audit` (ADMIN), newest first, filtered.
    pub async fn audit_filtered(
        &self,
        filter: &AuditFilter,
        all: bool,
    ) -> Result<Page<AuditEntry>> {
        let time = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        let mut request = ApiRequest::new(Method::GET, "/api/audit");
        if let Some(id) = filter.patient {
            request = request.query("patientId", id);
        }
        if let Some(id) = filter.actor {
            request = request.query("actorId", id);
        }
        if let Some(action) = &filter.action {
            request = request.query("action", action);
        }
        if let Some(since) = &filter.since {
            request = request.query("since", time(since));
        }
        if let Some(until) = &filter.until {
            request = request.query("until", time(until));
        }
        if let Some(limit) = filter.limit {
            request = request.query("limit", limit);
        }
        if let Some(cursor) = &filter.cursor {
            request = request.query("cursor", cursor);
        }
        self.pages(request, all).await
    }
}

/// An ETag in the `If-Match` form for a version number (`3` → `"3"`); tags already quoted or
/// weak are kept.
pub fn etag_for(version: &str) -> String {
    let v = version.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        v.to_owned()
    } else {
        format!("\"{v}\"")
    }
}

/// A patient body with the response's `ETag`.
async fn tagged(response: super::ApiResponse) -> Result<Tagged<Patient>> {
    let etag = header_string(response.headers(), &ETAG);
    Ok(Tagged {
        value: response.json().await?,
        etag,
    })
}

fn header_string(
    headers: &reqwest::header::HeaderMap,
    name: &reqwest::header::HeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_once() {
        assert_eq!(etag_for("3"), "\"3\"");
        assert_eq!(etag_for("\"3\""), "\"3\"");
        assert_eq!(etag_for("W/\"3\""), "W/\"3\"");
    }
}
