//! The app starts on both backends and every service answers its health probes.

use crate::helpers::{BACKENDS, spawn_app_on};

#[tokio::test]
async fn every_service_is_live_and_ready() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        for base in [
            app.base.clone(),
            format!("http://{}", app.auth_addr),
            format!("http://{}", app.patient_addr),
        ] {
            for probe in ["/health/live", "/health/ready"] {
                let response = app
                    .client
                    .get(format!("{base}{probe}"))
                    .send()
                    .await
                    .expect("probe");
                assert_eq!(response.status(), 200, "{backend:?} {base}{probe}");
                let body: serde_json::Value = response.json().await.expect("json");
                assert_eq!(body["status"], "UP");
            }
        }
        // Not public on the gateway: an ADMIN token reads it (see `edge`).
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(app.admin_token().await)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(metrics.contains("http_requests_total"), "{metrics}");
        app.stop().await;
    }
}
