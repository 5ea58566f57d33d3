//! The audit model every service shares (DESIGN §6): who acted ([`AuditMeta`]: actor and the
//! bounded [`RequestMeta`]), what they did ([`AuditAction`]: a dotted action name and the kind
//! of resource), and how it ended ([`Outcome`]). Each service still writes its own table (a
//! service only touches its own tables): `patient_audit`, `audit_log` (billing), `auth_audit`,
//! all with the same columns for these parts, spelled the same way.
//!
//! Audit rows carry ids and classifications only, never field values (names, emails, amounts
//! of PHI, credentials).

use pms_proto::rest::Role;
use uuid::Uuid;

pub use crate::request_meta::{RequestId, RequestMeta};

/// An audited action: its stable name (`patient.read`, `billing.invoice.issue`, `auth.login`)
/// and the kind of resource it is about (`patient`, `invoice`, `user`, …).
pub trait AuditAction: Copy + Send + Sync + 'static {
    /// The stored action name; part of the audit API, never renamed.
    fn name(self) -> &'static str;
    /// The stored resource kind.
    fn resource(self) -> &'static str;
}

/// How an audited attempt ended. One vocabulary for every service; each uses the variants that
/// can happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused by policy: the caller's role (403), a disabled account, a reused refresh token.
    Denied,
    /// The resource does not exist (404).
    NotFound,
    /// Invalid input (400, 413, 415) or a request the rules refuse (422).
    Rejected,
    /// A duplicate or a stale version (409, 412).
    Conflict,
    /// The attempt failed: wrong credentials or an unusable token (auth), or a server-side
    /// failure (5xx).
    Failed,
    /// Refused by a rate limit (429).
    Throttled,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Denied => "DENIED",
            Outcome::NotFound => "NOT_FOUND",
            Outcome::Rejected => "REJECTED",
            Outcome::Conflict => "CONFLICT",
            Outcome::Failed => "FAILED",
            Outcome::Throttled => "THROTTLED",
        }
    }
}

/// Who did something, from where: the non-PHI half of every audit row, in every service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditMeta {
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    /// Client address and request id, bounded at the edge.
    pub request: RequestMeta,
}

impl AuditMeta {
    /// An authenticated caller's request.
    pub fn new(actor: Option<(Uuid, Role)>, request: RequestMeta) -> AuditMeta {
        AuditMeta {
            actor_id: actor.map(|a| a.0),
            actor_role: actor.map(|a| a.1),
            request,
        }
    }

    /// The `actor_role` column.
    pub fn role_str(&self) -> Option<&'static str> {
        self.actor_role.map(Role::as_str)
    }

    /// The `client_ip` column.
    pub fn client_ip(&self) -> Option<String> {
        self.request.client_ip_text()
    }

    /// The `request_id` column.
    pub fn request_id(&self) -> Option<&str> {
        self.request.request_id_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_one_spelling() {
        let all = [
            Outcome::Success,
            Outcome::Denied,
            Outcome::NotFound,
            Outcome::Rejected,
            Outcome::Conflict,
            Outcome::Failed,
            Outcome::Throttled,
        ];
        let names: Vec<&str> = all.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "SUCCESS",
                "DENIED",
                "NOT_FOUND",
                "REJECTED",
                "CONFLICT",
                "FAILED",
                "THROTTLED"
            ]
        );
    }

    #[test]
    fn meta_columns_come_from_the_bounded_request() {
        let request = RequestMeta {
            client_ip: Some("192.0.2.4".parse().expect("ip")),
            request_id: RequestId::parse("req-1"),
        };
        let id = Uuid::new_v4();
        let meta = AuditMeta::new(Some((id, Role::Viewer)), request);
        assert_eq!(meta.actor_id, Some(id));
        assert_eq!(meta.role_str(), Some("VIEWER"));
        assert_eq!(meta.client_ip().as_deref(), Some("192.0.2.4"));
        assert_eq!(meta.request_id(), Some("req-1"));
    }
}
