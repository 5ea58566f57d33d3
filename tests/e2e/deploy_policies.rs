//! docker/kubernetes/ policies: each Deployment's environment is a valid `pms-server`
//! configuration with a deployer's secrets and refused with the overlay's placeholders; pods run
//! hardened (non-root, read-only root filesystem, writable only where an emptyDir is mounted,
//! bounded resources), only the gateway is reachable from outside (Ingress, Service types,
//! NetworkPolicies), and the alert rules and the autoscaler's custom metric use the metric names
//! the services export (README "Operations").

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use pms_e2e::binary;
use serde_norway::Value;

use crate::deploy_kubernetes::{
    Workload, documents, kubernetes_dir, objects, rendered_overlay, string, workloads,
};

/// The metric families PMS services export (the names README "Operations" documents).
const METRICS: [&str; 16] = [
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "db_pool_connections",
    "db_pool_max_connections",
    "db_pool_acquire_seconds",
    "outbox_pending_events",
    "outbox_oldest_pending_age_seconds",
    "consumer_lag",
    "events_applied_total",
    "events_skipped_total",
    "sse_clients",
    "http_requests_total",
    "http_request_duration_seconds",
    "service_ready",
    "up",
];

/// What a deployer puts into `pms-secrets` (valid values of the right shape).
fn deployed_secrets() -> BTreeMap<String, String> {
    use base64::Engine;
    let kek = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    BTreeMap::from([
        (
            "database-url".to_owned(),
            "postgres://pms:secret@postgres:5432/pms".to_owned(),
        ),
        (
            "admin-password".to_owned(),
            "a-long-admin-password".to_owned(),
        ),
        (
            "key-encryption-key".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(kek),
        ),
        (
            "metrics-token".to_owned(),
            "a-metrics-token-of-some-length".to_owned(),
        ),
    ])
}

/// `pms-server check-config` with a Deployment's environment, secrets resolved from `secrets`.
fn check_config(w: &Workload, secrets: &BTreeMap<String, String>) -> std::process::Output {
    let mut command = Command::new(binary("pms-server"));
    command.arg("check-config");
    for (key, _) in std::env::vars() {
        if key.starts_with("PMS_") {
            command.env_remove(key);
        }
    }
    for (key, value) in &w.env {
        let value = match value.strip_prefix("secret:") {
            Some(name) => secrets.get(name).unwrap_or_else(|| panic!("secret {name}")),
            None => value,
        };
        command.env(key, value);
    }
    command.output().expect("run check-config")
}

#[test]
fn each_deployment_is_a_valid_configuration_and_the_placeholders_fail_closed() {
    let docs = documents(&rendered_overlay());
    let secret = objects(&docs, "Secret")
        .into_iter()
        .find(|s| string(&s["metadata"]["name"]).starts_with("pms-secrets"))
        .expect("the overlay generates pms-secrets");
    let placeholders: BTreeMap<String, String> = secret["data"]
        .as_mapping()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(string(v))
                .expect("base64");
            (string(k), String::from_utf8(bytes).expect("UTF-8"))
        })
        .collect();
    let deployed = deployed_secrets();
    let keys: Vec<&String> = placeholders.keys().collect();
    assert_eq!(
        keys,
        deployed.keys().collect::<Vec<_>>(),
        "the Secret's keys"
    );
    for w in workloads(&docs) {
        let output = check_config(&w, &deployed);
        assert!(
            output.status.success(),
            "{}: {}",
            w.role,
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = String::from_utf8_lossy(&output.stdout);
        if w.role != "gateway" {
            assert!(
                summary.contains("events    kafka kafka:9092"),
                "{}:\n{summary}",
                w.role
            );
        }
        // A service that reads a secret other than the database URL refuses the placeholder.
        let guarded = w
            .env
            .values()
            .any(|v| v.starts_with("secret:") && v != "secret:database-url");
        if guarded {
            let output = check_config(&w, &placeholders);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{}: placeholders refused",
                w.role
            );
        }
    }
}

#[test]
fn pods_are_hardened() {
    let docs = documents(&rendered_overlay());
    for w in workloads(&docs) {
        let pod = &w.pod;
        let c = &w.container;
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{}", w.role);
        assert_eq!(pod["automountServiceAccountToken"], false, "{}", w.role);
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", w.role);
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", w.role);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{}", w.role);
        // Writable paths are emptyDirs: the data dir (the image's WORKDIR) and /tmp.
        let mounts: BTreeSet<String> = c["volumeMounts"]
            .as_sequence()
            .expect("volumeMounts")
            .iter()
            .map(|m| string(&m["mountPath"]))
            .collect();
        assert_eq!(
            mounts,
            BTreeSet::from(["/var/lib/pms".to_owned(), "/tmp".to_owned()])
        );
        for volume in pod["volumes"].as_sequence().expect("volumes") {
            assert!(volume.get("emptyDir").is_some(), "{}: {volume:?}", w.role);
        }
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    !c["resources"][bound][resource].is_null(),
                    "{}: {bound}.{resource}",
                    w.role
                );
            }
        }
    }
    // The image's working directory and user are what the pods mount and run as.
    let dockerfile =
        std::fs::read_to_string(kubernetes_dir().join("../Dockerfile")).expect("docker/Dockerfile");
    assert!(dockerfile.contains("WORKDIR /var/lib/pms"));
    assert!(dockerfile.contains("--uid 10001"));
}

#[test]
fn only_the_gateway_is_reachable_from_outside() {
    let docs = documents(&rendered_overlay());
    for service in objects(&docs, "Service") {
        let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
        assert!(
            kind == "ClusterIP" || kind == "ExternalName",
            "{}: {kind} would publish it",
            string(&service["metadata"]["name"])
        );
    }
    let ingresses = objects(&docs, "Ingress");
    assert_eq!(ingresses.len(), 1);
    for rule in ingresses[0]["spec"]["rules"].as_sequence().expect("rules") {
        for path in rule["http"]["paths"].as_sequence().expect("paths") {
            assert_eq!(path["backend"]["service"]["name"], "gateway");
        }
    }
    let policies = objects(&docs, "NetworkPolicy");
    let deny = policies
        .iter()
        .find(|p| p["metadata"]["name"] == "pms-default-deny")
        .expect("a default-deny policy");
    assert!(deny["spec"].get("ingress").is_none() && deny["spec"].get("egress").is_none());
    // Any rule admitting traffic from outside the PMS pods (no podSelector) is the gateway's,
    // or the monitoring namespace's scrape of /metrics.
    for policy in policies {
        let name = string(&policy["metadata"]["name"]);
        for rule in policy["spec"]["ingress"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let from = rule["from"].as_sequence().cloned().unwrap_or_default();
            let outside = from.is_empty() || from.iter().any(|f| f.get("podSelector").is_none());
            if outside {
                let component = &policy["spec"]["podSelector"]["matchLabels"];
                let scrape = name == "pms-allow-metrics-scrape"
                    && from.iter().all(|f| {
                        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                            == "monitoring"
                    });
                assert!(
                    component["app.kubernetes.io/component"] == "gateway" || scrape,
                    "{name} admits traffic from outside"
                );
            }
        }
    }
}

/// Metric names in a PromQL expression: identifiers outside `{…}`, `[…]` and quotes, not
/// followed by `(` (functions), no keyword or aggregation operator, and not inside
/// `by (…)`/`without (…)`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: [&str; 21] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut depth_curly, mut depth_square, mut grouping) = (0, 0, 0, false);
    let mut after_grouping_word = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => depth_curly += 1,
            '}' => depth_curly -= 1,
            '[' => depth_square += 1,
            ']' => depth_square -= 1,
            '"' if depth_curly > 0 => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
            }
            '(' if after_grouping_word => grouping = true,
            ')' if grouping => grouping = false,
            _ if (c.is_ascii_alphabetic() || c == '_') && depth_curly == 0 && depth_square == 0 => {
                let start = i;
                while i + 1 < chars.len()
                    && (chars[i + 1].is_ascii_alphanumeric()
                        || chars[i + 1] == '_'
                        || chars[i + 1] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..=i].iter().collect();
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                after_grouping_word = word == "by" || word == "without";
                if !grouping && !WORDS.contains(&word.as_str()) && next != Some(&'(') {
                    names.insert(word);
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() && c != '(' {
            after_grouping_word = false;
        }
        i += 1;
    }
    names
}

#[test]
fn alert_rules_and_the_autoscaler_use_exported_metrics() {
    let path = kubernetes_dir().join("base/pms-alerts.rules.yaml");
    let text = std::fs::read_to_string(&path).expect("rules file");
    let rules: Value = serde_norway::from_str(&text).expect("rules file is YAML");
    let mut alerted = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = string(&rule["alert"]);
            assert!(
                !rule["for"].is_null(),
                "{name}: `for` (no alert on one scrape)"
            );
            assert!(!rule["labels"]["severity"].is_null(), "{name}: severity");
            assert!(!rule["annotations"]["summary"].is_null(), "{name}: summary");
            let names = metric_names(&string(&rule["expr"]));
            assert!(!names.is_empty(), "{name}: no metric in its expression");
            for metric in &names {
                assert!(
                    METRICS.contains(&metric.as_str()),
                    "{name}: unknown metric {metric}"
                );
            }
            alerted.extend(names);
        }
    }
    // The brief's four alerts: outbox age, consumer lag, 5xx ratio, readiness.
    for metric in [
        "outbox_oldest_pending_age_seconds",
        "consumer_lag",
        "http_requests_total",
        "service_ready",
    ] {
        assert!(alerted.contains(metric), "no alert on {metric}");
    }
    // The rules ship in a ConfigMap of the rendered overlay, unchanged.
    let docs = documents(&rendered_overlay());
    let config = objects(&docs, "ConfigMap")
        .into_iter()
        .find(|c| string(&c["metadata"]["name"]).starts_with("pms-prometheus-rules"))
        .expect("rules ConfigMap");
    assert_eq!(string(&config["data"]["pms-alerts.rules.yaml"]), text);
    // The HPA's custom metric is http_requests_total as a rate (prometheus-adapter's rule).
    let adapter = std::fs::read_to_string(
        kubernetes_dir().join("overlays/example/prometheus-adapter-values.yaml"),
    )
    .expect("adapter values");
    assert!(
        adapter.contains("http_requests_total") && adapter.contains("http_requests_per_second")
    );
    let custom: Vec<String> = objects(&docs, "HorizontalPodAutoscaler")
        .into_iter()
        .flat_map(|h| {
            h["spec"]["metrics"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|m| m["type"] == "Pods")
        .map(|m| string(&m["pods"]["metric"]["name"]))
        .collect();
    assert_eq!(
        custom,
        ["http_requests_per_second", "http_requests_per_second"]
    );
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            r#"sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m])) > 0.05"#
        ),
        BTreeSet::from(["http_requests_total".to_owned()])
    );
    assert_eq!(
        metric_names(
            "max by (service) (db_pool_connections{state=\"in_use\"}) / max by (service) (db_pool_max_connections)"
        ),
        BTreeSet::from([
            "db_pool_connections".to_owned(),
            "db_pool_max_connections".to_owned()
        ])
    );
}
