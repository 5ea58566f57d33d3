//! Loading, typed values, validation and the generated default file.

use std::collections::BTreeSet;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde_json::Value;

use super::example::{TEMPLATE, is_key, lookup, section_header};
use super::*;

fn load(toml: &str) -> anyhow::Result<Settings> {
    Settings::from_figment(Figment::new().merge(Toml::string(toml)))
}

#[test]
fn the_all_in_one_summary_lists_only_the_ports_it_listens_on() {
    let mut settings = Settings::default();
    let summary = settings.summary_all_in_one();
    assert!(summary.contains("gateway   127.0.0.1:4004\n"), "{summary}");
    assert!(
        summary.contains("billing   gRPC 127.0.0.1:9001\n"),
        "{summary}"
    );
    for unused in [":4000", ":4001", ":4002", ":4005", "http://"] {
        assert!(!summary.contains(unused), "{unused} in:\n{summary}");
    }
    settings.billing.grpc_enabled = false;
    let summary = settings.summary_all_in_one();
    assert!(!summary.contains(":9001"), "{summary}");
    assert!(summary.contains("billing   gRPC off"), "{summary}");
    let distributed = settings.summary();
    assert!(distributed.contains(":4000 db "), "{distributed}");
}

#[test]
fn default_config_matches_the_defaults() {
    let text = default_config_toml();
    assert!(!text.contains("(no default)"), "{text}");
    let from_file: Settings = Figment::new()
        .merge(Toml::string(&text))
        .extract()
        .expect("default config parses");
    assert_eq!(
        format!("{from_file:?}"),
        format!("{:?}", Settings::default())
    );
    // Spot checks of the rendering of each kind of value.
    for line in [
        "data_dir = \"pms-data\"",
        "trusted_proxies = \"127.0.0.0/8,::1/128\"",
        "header_read_timeout_secs = 10",
        "password_hash_queue_timeout_ms = 10000",
        "patient_url = \"http://127.0.0.1:4000\"",
        "bind = \"127.0.0.1\"",
        "grpc_enabled = true",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// `(section, key)` of every leaf of the serialized defaults (unset options included).
fn settings_keys() -> BTreeSet<(String, String)> {
    let values = serde_json::to_value(Settings::default()).expect("serializes");
    let mut keys = BTreeSet::new();
    for (name, value) in values.as_object().expect("a map") {
        match value {
            Value::Object(section) => {
                keys.extend(section.keys().map(|k| (name.clone(), k.clone())));
            }
            _ => {
                keys.insert((String::new(), name.clone()));
            }
        }
    }
    keys
}

#[test]
fn every_key_is_documented_once_in_its_section() {
    let mut documented = BTreeSet::new();
    let mut section = String::new();
    for line in TEMPLATE.lines() {
        if let Some(name) = section_header(line) {
            section = name.to_owned();
            continue;
        }
        let body = line.strip_prefix("# ").unwrap_or(line);
        let key = body
            .strip_suffix(" =")
            .or_else(|| body.split_once(" = ").map(|(k, _)| k));
        if let Some(key) = key.filter(|k| is_key(k)) {
            assert!(
                documented.insert((section.clone(), key.to_owned())),
                "{section}.{key} documented twice"
            );
        }
    }
    assert_eq!(documented, settings_keys(), "template keys vs Settings");
}

#[test]
fn commented_examples_are_valid_keys_and_values() {
    // Every `# key = example` line, uncommented, is read (types only: examples need not pass the
    // cross-checks, e.g. SASL settings without a SASL protocol).
    let uncommented: String = TEMPLATE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(body)
                if body
                    .split_once(" = ")
                    .is_some_and(|(k, v)| is_key(k) && !v.is_empty()) =>
            {
                body.split_once(" #").map_or(body, |(b, _)| b).trim_end()
            }
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let filled = super::example::render(&uncommented, &Settings::default());
    let settings: Settings = Figment::new()
        .merge(Toml::string(&filled))
        .extract()
        .unwrap_or_else(|e| panic!("{e}\n{filled}"));
    assert!(settings.database.url.is_some() && settings.fixtures.is_some());
    let values = serde_json::to_value(&settings).expect("serializes");
    assert_eq!(
        lookup(&values, Some("kafka"), "sasl_password"),
        Some(&Value::String("[redacted]".to_owned()))
    );
}

#[test]
fn typed_values_are_read_once() {
    let s = load(
        "[http]\ntrusted_proxies = \"10.0.0.0/8, 192.0.2.1\"\nrequest_timeout_secs = 5\n\
         [gateway]\npatient_url = \"https://patient.internal:8443/\"\n\
         [kafka]\nsession_timeout_ms = 6000",
    )
    .expect("valid");
    assert_eq!(
        s.http.trusted_proxies.to_string(),
        "10.0.0.0/8,192.0.2.1/32"
    );
    assert!(
        s.http
            .trusted_proxies
            .as_slice()
            .iter()
            .any(|n| n.contains([10, 9, 8, 7].into()))
    );
    assert_eq!(s.http.request_timeout, Duration::from_secs(5));
    assert_eq!(
        s.gateway.patient_url.base(),
        "https://patient.internal:8443"
    );
    assert_eq!(s.kafka.session_timeout, Duration::from_millis(6000));
    let list = load("[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]").expect("an array");
    assert_eq!(list.http.trusted_proxies.to_string(), "10.0.0.0/8,::1/128");
}

#[test]
fn bad_values_are_named_by_key_in_toml() {
    for (toml, key, what) in [
        (
            "[gateway]\npatient_url = \"not a url\"",
            "`gateway.patient_url` (PMS_GATEWAY__PATIENT_URL)",
            "not a URL",
        ),
        (
            "[auth]\nurl = \"ftp://auth:21\"",
            "`auth.url`",
            "http:// or https://",
        ),
        (
            "[patient]\nbilling_grpc_url = 9001",
            "`patient.billing_grpc_url`",
            "string",
        ),
        (
            "[http]\nrequest_timeout_secs = \"soon\"",
            "`http.request_timeout_secs` (PMS_HTTP__REQUEST_TIMEOUT_SECS)",
            "whole number of seconds",
        ),
        (
            "[kafka]\nmessage_timeout_ms = -5",
            "`kafka.message_timeout_ms`",
            "whole number of milliseconds",
        ),
        (
            "[http]\ntrusted_proxies = \"10.0.0.0/33\"",
            "`http.trusted_proxies`",
            "bad prefix length",
        ),
        (
            "[http]\ntrusted_proxies = \"proxy.local\"",
            "`http.trusted_proxies`",
            "not an IP network",
        ),
        (
            "[gateway]\nbind = \"localhost\"",
            "`gateway.bind` (PMS_GATEWAY__BIND)",
            "IP address",
        ),
        (
            "[database]\nurl = \"mysql://u:hunter2hunter2@h/db\"",
            "`database.url` (PMS_DATABASE__URL)",
            "postgres://",
        ),
        (
            "[billing]\ndatabase_url = \"hunter2hunter2\"",
            "`billing.database_url`",
            "not a URL",
        ),
    ] {
        let err = format!("{:#}", load(toml).expect_err(toml));
        assert!(err.contains(key) && err.contains(what), "{toml}: {err}");
        assert!(
            !err.contains("hunter2"),
            "a database URL is never echoed: {err}"
        );
    }
}

#[test]
fn unknown_keys_are_named() {
    let err = load("[database]\nurll = \"x\"").expect_err("unknown key must fail");
    assert!(format!("{err:#}").contains("urll"), "{err:#}");
}

#[test]
fn invalid_values_name_the_key() {
    let err = load("[auth]\naccess_token_ttl_secs = 3600").expect_err("too long a TTL must fail");
    assert!(
        format!("{err:#}").contains("auth.access_token_ttl_secs"),
        "{err:#}"
    );
    let err = load("[database]\nurl = \"mysql://x\"").expect_err("non-postgres URL must fail");
    assert!(format!("{err:#}").contains("database.url"), "{err:#}");
}

#[test]
fn kafka_security_settings_are_checked() {
    let ok = load(
        "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"pms\"\nsasl_password = \"s3cret-s3cret\"",
    )
    .expect("MSK-style settings are valid");
    assert!(!format!("{ok:?}").contains("s3cret"), "redacted");
    let production =
        load("[kafka]\nreplication_factor = 3\nmin_insync_replicas = 2").expect("3/2 is valid");
    assert_eq!(
        (
            production.kafka.replication_factor,
            production.kafka.min_insync_replicas
        ),
        (3, 2)
    );
    for (toml, key) in [
        (
            "[kafka]\nsecurity_protocol = \"tls\"",
            "kafka.security_protocol",
        ),
        (
            "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"GSSAPI\"",
            "kafka.sasl_mechanism",
        ),
        (
            "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"",
            "kafka.sasl_password",
        ),
        ("[kafka]\nsasl_username = \"pms\"", "kafka.sasl_*"),
        ("[kafka]\nssl_ca_location = \"/ca.pem\"", "kafka.ssl_*"),
        (
            "[kafka]\nreplication_factor = 0",
            "kafka.replication_factor",
        ),
        (
            "[kafka]\nreplication_factor = 3\nmin_insync_replicas = 4",
            "kafka.min_insync_replicas",
        ),
        (
            "[kafka]\nmin_insync_replicas = 0",
            "kafka.min_insync_replicas",
        ),
    ] {
        let err = load(toml).expect_err(toml);
        assert!(format!("{err:#}").contains(key), "{toml}: {err:#}");
    }
}

#[test]
fn secrets_are_redacted_in_debug_and_serialization() {
    let settings = load(
        "[database]\nurl = \"postgres://u:hunter2hunter2@h/db\"\n[auth]\nadmin_password = \"hunter2hunter2\"",
    )
    .expect("valid");
    assert!(!format!("{settings:?}").contains("hunter2"));
    let json = serde_json::to_string(&settings).expect("serializes");
    assert!(!json.contains("hunter2"), "{json}");
}

/// The README's configuration table states defaults too: each one it states (a backticked value,
/// `unset`, `random`, `empty`) must be the default of the variable it sits beside.
#[test]
fn readme_defaults_match_the_defaults() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## Configuration\n")
        .expect("a Configuration section");
    let readme = &readme[start + 1..];
    let readme = &readme[..readme[3..]
        .find("\n## ")
        .map_or(readme.len(), |end| end + 3)];
    let values = serde_json::to_value(Settings::default()).expect("serializes");
    let mut checked = 0;
    for row in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let [vars, defaults, ..] = cells.as_slice() else {
            continue;
        };
        let vars: Vec<&str> = vars.trim_start_matches("| ").split(", ").collect();
        let defaults: Vec<&str> = defaults.split(", ").collect();
        if vars.len() != defaults.len() || !vars.iter().any(|v| v.contains("`PMS_")) {
            continue;
        }
        // `PMS_KAFKA__CLIENT_ID`, `…__PARTITIONS`: the section of the row's first variable.
        let mut section = String::new();
        for (var, default) in vars.iter().zip(&defaults) {
            let Some(var) = var
                .split(" / ")
                .map(|v| v.trim_matches('`'))
                .find(|v| v.starts_with("PMS_") || v.starts_with("…__"))
            else {
                continue;
            };
            let (sec, key) = match var {
                "PMS_ADMIN_EMAIL" => ("auth".to_owned(), "admin_email".to_owned()),
                "PMS_ADMIN_PASSWORD" => ("auth".to_owned(), "admin_password".to_owned()),
                _ => match var.trim_start_matches("PMS_").split_once("__") {
                    Some(("…", key)) => (section.clone(), key.to_lowercase()),
                    Some((sec, key)) => (sec.to_lowercase(), key.to_lowercase()),
                    None => (String::new(), var.trim_start_matches("PMS_").to_lowercase()),
                },
            };
            section = sec.clone();
            let expected = if let Some(literal) = default.split('`').nth(1) {
                if literal.starts_with('…') {
                    continue;
                }
                Value::String(literal.to_owned())
            } else if default.starts_with("unset") || default.starts_with("random") {
                Value::Null
            } else if default.starts_with("empty") {
                Value::String(String::new())
            } else {
                continue;
            };
            let section = (!sec.is_empty()).then_some(sec.as_str());
            let actual = match lookup(&values, section, &key) {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Null) => Value::Null,
                Some(other) => Value::String(other.to_string()),
                None => panic!("README names {var}, which is no key ({sec}.{key})"),
            };
            assert_eq!(actual, expected, "README default of {var}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} README defaults were checked");
}
