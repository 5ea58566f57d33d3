//! A throttled login (429 with `Retry-After`): `pms` exits 5 and says when to try again.

use super::{Backend, Pms, Server};

#[tokio::test]
async fn throttled_login_says_when_to_retry() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    let mut attempts = Vec::new();
    for _ in 0..10 {
        let run = pms.run(
            &[
                "login",
                "--server",
                &server.base,
                "--email",
                &server.admin_email,
                "--password-stdin",
            ],
            Some("wrong-password-123\n"),
        );
        let throttled = run.code == 5;
        attempts.push(run);
        if throttled {
            break;
        }
    }
    let last = attempts.last().expect("at least one attempt");
    assert_eq!(last.code, 5, "throttled within 10 attempts: {attempts:?}");
    let line = last.stderr.trim();
    assert!(line.starts_with("error: too many requests"), "{line}");
    let seconds: u64 = line
        .rsplit_once("(try again in ")
        .and_then(|(_, rest)| rest.strip_suffix(" s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry time in {line:?}"));
    assert!((1..=900).contains(&seconds), "{seconds}");
}
