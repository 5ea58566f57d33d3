//! The background side: one task owns the [`ApiClient`] (and the session behind it) and the
//! live event stream. The UI sends it [`Request`]s; every request runs in its own task and
//! answers with exactly one [`Action`] over the channel, so the render loop never awaits the
//! network.

use std::time::Duration;

use pms_cli::api::{ApiRequest, Credentials, PatientQuery, StreamStart, expires_at};
use pms_cli::credentials::Session;
use pms_cli::session::Context;
use pms_cli::sse::{Backoff, SseParser};
use pms_cli::{ApiClient, Error};
use pms_proto::rest::{Role, StoredEvent};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::action::{Action, Op, PatientDetail, Request, StreamUpdate};

/// Page size of patient lists: one screenful or two; scrolling fetches the next page.
pub const PAGE_SIZE: u32 = 100;

/// Starts the worker on the current Tokio runtime. `client` is the session found at start
/// (None: the login screen comes first). Returns where to send requests.
pub fn spawn(
    ctx: Context,
    client: Option<ApiClient>,
    tx: UnboundedSender<Action>,
) -> UnboundedSender<Request> {
    let (requests, rx) = unbounded_channel();
    let worker = Worker {
        ctx,
        client,
        tx,
        stream: None,
    };
    tokio::spawn(worker.run(rx));
    requests
}

struct Worker {
    ctx: Context,
    client: Option<ApiClient>,
    tx: UnboundedSender<Action>,
    stream: Option<JoinHandle<()>>,
}

impl Worker {
    async fn run(mut self, mut rx: UnboundedReceiver<Request>) {
        while let Some(request) = rx.recv().await {
            match request {
                Request::Login { email, password } => {
                    let answer = match self.login(&email, &password).await {
                        Ok((client, email, role)) => {
                            self.client = Some(client);
                            Action::LoggedIn { email, role }
                        }
                        Err(error) => Action::Failed {
                            op: Op::Login,
                            error,
                        },
                    };
                    let _ = self.tx.send(answer);
                }
                Request::Stream => {
                    if let Some(client) = self.client.clone() {
                        if let Some(old) = self.stream.take() {
                            old.abort();
                        }
                        self.stream = Some(tokio::spawn(follow(client, self.tx.clone())));
                    }
                }
                other => {
                    let tx = self.tx.clone();
                    let client = self.client.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(execute(client, other).await);
                    });
                }
            }
        }
        if let Some(stream) = self.stream.take() {
            stream.abort();
        }
    }

    /// Logs in like `pms login`: tokens, identity, session stored (keyring first), then the
    /// same client the CLI would build from the stored session.
    async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(ApiClient, String, Option<Role>), Error> {
        let server = self.ctx.server();
        let anonymous = self.ctx.anonymous_client(&server)?;
        let tokens = anonymous.login(email, password).await?;
        let identity = ApiClient::new(&server, Credentials::Token(tokens.token.clone()))?;
        let (email, role) = match identity.me().await {
            Ok(me) => (me.email, Some(me.role)),
            Err(_) => (email.to_owned(), None),
        };
        let session = Session {
            server,
            email: email.clone(),
            role,
            access_token: tokens.token,
            refresh_token: tokens.refresh_token,
            expires_at: expires_at(tokens.expires_in),
        };
        let ctx = self.ctx.clone();
        // Keyring calls block (with their own timeout): keep them off the runtime's threads.
        let (client, _) = tokio::task::spawn_blocking(move || {
            ctx.save_session(&session)?;
            ctx.client()
        })
        .await
        .map_err(|e| Error::Other(format!("storing the session failed: {e}")))??;
        Ok((client, email, role))
    }
}

fn failed(op: Op) -> impl FnOnce(Error) -> Action {
    move |error| Action::Failed { op, error }
}

/// Runs one request and phrases the answer as an action.
async fn execute(client: Option<ApiClient>, request: Request) -> Action {
    let Some(client) = client else {
        return Action::Failed {
            op: Op::Me,
            error: Error::NotLoggedIn {
                profile: String::new(),
                server: None,
            },
        };
    };
    match request {
        Request::Login { .. } | Request::Stream => Action::Tick,
        Request::Me => client
            .me()
            .await
            .map(|me| Action::LoggedIn {
                email: me.email,
                role: Some(me.role),
            })
            .unwrap_or_else(failed(Op::Me)),
        Request::Patients { q, sort, cursor } => {
            let append = cursor.is_some();
            let result = match cursor {
                Some(next) => match same_server(&client, &next) {
                    Ok(()) => client.page(ApiRequest::new(reqwest_get(), next)).await,
                    Err(e) => Err(e),
                },
                None => {
                    let query = PatientQuery {
                        q,
                        limit: Some(PAGE_SIZE),
                        sort: Some(sort),
                        cursor: None,
                    };
                    client.list_patients(&query, false).await
                }
            };
            result
                .map(|page| Action::PatientsLoaded { append, page })
                .unwrap_or_else(failed(Op::Patients))
        }
        Request::PatientDetail { id, with_audit } => {
            let id_text = id.to_string();
            let (patient, accounts, history, audit) = tokio::join!(
                client.get_patient(id),
                client.billing_accounts(Some(&id_text), None),
                client.patient_history(id),
                async {
                    if with_audit {
                        Some(client.audit(Some(id), Some(50), false).await)
                    } else {
                        None
                    }
                }
            );
            match patient {
                Ok(tagged) => Action::PatientDetailLoaded(Box::new(PatientDetail {
                    patient: tagged.value,
                    etag: tagged.etag,
                    // Billing or history may be refused for this role: the pane still shows
                    // the patient.
                    accounts: accounts.unwrap_or_default(),
                    history: history.unwrap_or_default(),
                    audit: audit.and_then(|a| a.ok()).map(|page| page.items),
                })),
                Err(e) => failed(Op::PatientDetail)(e),
            }
        }
        Request::SavePatient { id, etag, body } => {
            let result = match id {
                Some(id) => client
                    .update_patient(id, &body, etag.as_deref())
                    .await
                    .map(|t| t.value),
                None => client.create_patient(&body).await,
            };
            result
                .map(|p| Action::PatientSaved(Box::new(p)))
                .unwrap_or_else(failed(Op::SavePatient))
        }
        Request::DeletePatient { id } => client
            .delete_patient(id)
            .await
            .map(|_| Action::PatientDeleted(id))
            .unwrap_or_else(failed(Op::DeletePatient)),
        Request::Accounts => client
            .billing_accounts(None, Some(500))
            .await
            .map(Action::AccountsLoaded)
            .unwrap_or_else(failed(Op::Accounts)),
        Request::Invoices { account } => client
            .invoices(account, None)
            .await
            .map(|invoices| Action::InvoicesLoaded { account, invoices })
            .unwrap_or_else(failed(Op::Invoices)),
        Request::Pay {
            invoice,
            body,
            idempotency_key,
        } => client
            .pay(invoice, &body, Some(&idempotency_key))
            .await
            .map(|p| Action::PaymentRecorded(Box::new(p)))
            .unwrap_or_else(failed(Op::Pay)),
        Request::CreateInvoice {
            account,
            body,
            idempotency_key,
        } => client
            .create_invoice(account, &body, Some(&idempotency_key))
            .await
            .map(|i| Action::InvoiceChanged(Box::new(i)))
            .unwrap_or_else(failed(Op::InvoiceAction)),
        Request::InvoiceAction {
            invoice,
            action,
            idempotency_key,
        } => client
            .invoice_action(invoice, action, Some(&idempotency_key))
            .await
            .map(|i| Action::InvoiceChanged(Box::new(i)))
            .unwrap_or_else(failed(Op::InvoiceAction)),
        Request::RefundCandidates { invoice, number } => client
            .payments(invoice)
            .await
            .map(|payments| Action::PaymentsLoaded { number, payments })
            .unwrap_or_else(failed(Op::Refund)),
        Request::Refund {
            payment,
            body,
            idempotency_key,
        } => client
            .refund(payment, &body, Some(&idempotency_key))
            .await
            .map(|r| Action::Refunded(Box::new(r)))
            .unwrap_or_else(failed(Op::Refund)),
        Request::Statement { account } => client
            .statement(account)
            .await
            .map(|s| Action::StatementLoaded(Box::new(s)))
            .unwrap_or_else(failed(Op::Statement)),
        Request::Summary => client
            .analytics_summary()
            .await
            .map(|s| Action::SummaryLoaded(Box::new(s)))
            .unwrap_or_else(failed(Op::Summary)),
        Request::Registrations { bucket } => {
            let today = chrono::Utc::now().date_naive();
            let from = match bucket {
                crate::action::Bucket::Day => today - chrono::Days::new(29),
                crate::action::Bucket::Week => today - chrono::Days::new(7 * 25),
                crate::action::Bucket::Month => today - chrono::Months::new(11),
            };
            let request = ApiRequest::new(reqwest_get(), "/api/analytics/registrations")
                .query("bucket", bucket.as_str())
                .query("from", from)
                .query("to", today);
            let result = match client.send(request).await {
                Ok(response) => response.json().await,
                Err(e) => Err(e),
            };
            result
                .map(Action::RegistrationsLoaded)
                .unwrap_or_else(failed(Op::Registrations))
        }
        Request::Users => client
            .list_users()
            .await
            .map(Action::UsersLoaded)
            .unwrap_or_else(failed(Op::Users)),
        Request::Audit { patient } => client
            .audit(patient, Some(200), false)
            .await
            .map(|page| Action::AuditLoaded(page.items))
            .unwrap_or_else(failed(Op::Audit)),
        Request::CreateUser { body } => client
            .create_user(&body)
            .await
            .map(|u| Action::UserSaved(Box::new(u)))
            .unwrap_or_else(failed(Op::SaveUser)),
        Request::UpdateUser { id, body } => client
            .update_user(id, &body)
            .await
            .map(|u| Action::UserSaved(Box::new(u)))
            .unwrap_or_else(failed(Op::SaveUser)),
    }
}

fn reqwest_get() -> reqwest::Method {
    reqwest::Method::GET
}

/// A next-page link is followed only on the server the session belongs to: a link elsewhere
/// would carry the bearer token to another host.
fn same_server(client: &ApiClient, link: &str) -> Result<(), Error> {
    // Parsed origins (scheme, host, port), never string prefixes: `http://127.0.0.1:4004` is
    // not a prefix test away from `http://127.0.0.1:40041` or `//evil.example`.
    let resolved = client.base_url().join(link).map(|u| u.to_string());
    if resolved.is_ok_and(|url| client.is_own_origin(&url)) {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "refusing to follow a next-page link to another server: {link}"
        )))
    }
}

/// Follows the live stream for as long as the app runs: reconnects with backoff, resumes with
/// `Last-Event-ID`, and reports every state change so the UI can show connected/reconnecting
/// and a gap marker. Sends are unbounded but tiny; the Events view caps what it keeps.
async fn follow(client: ApiClient, tx: UnboundedSender<Action>) {
    let backoff = Backoff::default();
    let mut last_id: Option<String> = None;
    let mut attempt: u32 = 0;
    loop {
        let _ = tx.send(Action::Stream(StreamUpdate::Connecting));
        let start = StreamStart {
            event_type: None,
            last_event_id: last_id.clone(),
            since: None,
        };
        let reason = match client.open_event_stream(&start).await {
            Ok(response) => {
                attempt = 0;
                let _ = tx.send(Action::Stream(StreamUpdate::Connected {
                    resumed_after: last_id.clone(),
                }));
                let mut parser = SseParser::default();
                let mut response = response;
                let mut reauthenticate = false;
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            for event in parser.push(&chunk) {
                                if event.event == "reauthenticate" {
                                    // The server ends the stream when the access token expired
                                    // or was revoked: renew the session and resume where we were.
                                    reauthenticate = true;
                                    continue;
                                }
                                if let Some(id) = &event.id {
                                    last_id = Some(id.clone());
                                }
                                if let Ok(stored) = serde_json::from_str::<StoredEvent>(&event.data)
                                {
                                    let update = StreamUpdate::Event(Box::new(stored));
                                    if tx.send(Action::Stream(update)).is_err() {
                                        return; // the app is gone
                                    }
                                }
                            }
                        }
                        Ok(None) if reauthenticate => match client.reauthenticate().await {
                            Ok(()) => break "session renewed".to_owned(),
                            Err(error) => {
                                let _ = tx.send(Action::Failed { op: Op::Me, error });
                                return;
                            }
                        },
                        Ok(None) => break "the server closed the stream".to_owned(),
                        Err(e) => break format!("stream error: {e}"),
                    }
                }
            }
            Err(e) if e.is_transient() => e.to_string(),
            Err(e) => {
                let _ = tx.send(Action::Failed {
                    op: Op::Me,
                    error: e,
                });
                return;
            }
        };
        attempt += 1;
        let delay = backoff.delay(attempt).max(Duration::from_millis(200));
        let lost = StreamUpdate::Lost {
            reason,
            retry_in_ms: delay.as_millis() as u64,
        };
        if tx.send(Action::Stream(lost)).is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}
