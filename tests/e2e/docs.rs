//! `/docs` works with no internet: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test-services`) renders the page with every host but the loopback server unreachable
//! (a dead proxy, which Chromium bypasses only for loopback, and a resolver that resolves
//! nothing), and Swagger UI lists the operations of each document. About 10–30 s.

use std::process::Command;
use std::time::Duration;

use pms_e2e::{ServerProcess, free_port};

use crate::scenario::Api;

/// The DOM of `url` after its scripts ran, rendered offline.
fn render_offline(url: &str) -> String {
    let profile = tempfile::tempdir().expect("temp dir");
    let output = Command::new("chromium")
        .args([
            "--headless",
            // Tests run as root in CI; Chromium's sandbox refuses root.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            // Every name resolves to nothing (the server is addressed by its IP).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect(
            "chromium is not installed: run `scripts/test-services` (installs Debian's chromium)",
        );
    assert!(
        output.status.success(),
        "chromium failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_docs_page_lists_the_operations_without_internet_access() {
    let port = free_port();
    let mut server = ServerProcess::spawn(
        "docs",
        &["--ephemeral"],
        &[("PMS_GATEWAY__PORT", port.to_string())],
    );
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    server.wait_ready(&api.base, Duration::from_secs(60)).await;

    // The page and its init script name no other host.
    for path in ["/docs", "/docs/swagger-init.js"] {
        let body = api
            .client
            .get(api.url(path))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert!(
            !body.contains("://"),
            "{path} refers to another host:\n{body}"
        );
    }
    let page = api.client.get(api.url("/docs")).send().await.expect("get");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("http"),
        "{csp}"
    );

    for (api_name, paths) in [
        (
            "patient",
            &["/patients", "/patients/{id}", "/patients/{id}/history"][..],
        ),
        (
            "billing",
            &["/billing/accounts", "/billing/invoices/{id}/payments"][..],
        ),
        ("auth", &["/login", "/users/{id}"][..]),
        (
            "analytics",
            &["/analytics/summary", "/analytics/events/stream"][..],
        ),
    ] {
        let url = api.url(&format!("/docs?api={api_name}"));
        let dom = tokio::task::spawn_blocking(move || render_offline(&url))
            .await
            .expect("join");
        for path in paths {
            assert!(
                dom.contains(&format!("data-path=\"{path}\"")),
                "{api_name}: operation {path} is not listed; the rendered page:\n{}",
                &dom[..dom.len().min(4000)]
            );
        }
    }
    assert!(server.terminate(Duration::from_secs(20)).await.success());
}
