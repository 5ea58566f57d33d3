//! Issue 10: password hashing is bounded. A flood of parallel logins gets 200s, or 503s with
//! `Retry-After` once the queue deadline passes, and never an unbounded queue; the other
//! endpoints keep answering meanwhile.

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use super::{Auth, problem};
use crate::helpers::{Backend, spawn_app_with};

#[tokio::test]
async fn a_login_flood_beyond_the_queue_deadline_is_shed_with_503_and_retry_after() {
    // One hashing slot and a 100 ms queue: 32 parallel logins of ~20+ ms of Argon2id each
    // cannot all start in time.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.auth.password_hash_concurrency = 1;
        s.auth.password_hash_queue_timeout = std::time::Duration::from_millis(100);
    })
    .await;
    let auth = Auth::through_gateway(&app);
    let token = auth.admin().await.token;
    let patients = app.url("/api/patients");

    let logins = (0..32).map(|_| auth.try_login(&app.admin_email, &app.admin_password));
    let flood = futures::future::join_all(logins);
    // Another endpoint, asked while the flood is queued, still answers.
    let during = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.client
            .get(&patients)
            .bearer_auth(&token)
            .send()
            .await
            .expect("list")
            .status()
    };
    let (responses, listed) = tokio::join!(flood, during);
    assert_eq!(listed, StatusCode::OK, "other endpoints keep serving");

    let (mut ok, mut shed) = (0, 0);
    for response in responses {
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                let retry: u64 = response.headers()[RETRY_AFTER]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("seconds");
                assert!(retry >= 1, "Retry-After {retry}");
                let problem = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
                assert!(
                    problem.detail.as_deref().unwrap_or("").contains("busy"),
                    "{problem:?}"
                );
                shed += 1;
            }
            other => panic!("a login answered {other}"),
        }
    }
    assert!(ok >= 1, "the slot serves some logins: {ok} ok, {shed} shed");
    assert!(
        shed >= 1,
        "a flood past the deadline is shed: {ok} ok, {shed} shed"
    );

    // Shed logins are not failed attempts: the account is not throttled afterwards.
    assert_eq!(
        auth.try_login(&app.admin_email, &app.admin_password)
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}
