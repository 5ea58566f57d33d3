//! docker/compose.yml is verified without a Docker engine: its services' commands and
//! environments (with docker/.env.example substituted) are valid `pms-server` configurations,
//! every URL points at a service and port that exists, and only the gateway is published.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pms_e2e::binary;

const ROLES: [&str; 5] = ["auth", "billing", "patient", "analytics", "gateway"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `KEY=value` lines of docker/.env.example.
fn env_example() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("docker/.env.example")).expect(".env.example");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The variables a deployer ends up with: docker/.env.example, plus the secrets it leaves empty
/// on purpose (compose refuses to start without them) generated the way its comments say.
fn deployed_env() -> BTreeMap<String, String> {
    use base64::Engine;
    let mut vars = env_example();
    let kek = vars
        .entry("PMS_AUTH__KEY_ENCRYPTION_KEY".to_owned())
        .or_default();
    if kek.is_empty() {
        // What `openssl rand -base64 32` gives: 32 random bytes (two v4 UUIDs here).
        let bytes = [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat();
        *kek = base64::engine::general_purpose::STANDARD.encode(bytes);
    }
    vars
}

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` as compose substitutes them (`:?`
/// refuses a missing or empty value).
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let expr = &rest[start + 2..end];
        let (name, rule) = match expr.find(':') {
            Some(i) => (&expr[..i], Some(&expr[i + 1..])),
            None => (expr, None),
        };
        let value = vars.get(name).map(String::as_str);
        let value = match (rule, value) {
            (Some(r), Some(v)) if r.starts_with('?') && v.is_empty() => {
                panic!("compose.yml requires {name} ({}), which is empty", &r[1..])
            }
            (Some(r), None | Some("")) if r.starts_with('-') => &r[1..],
            (_, Some(v)) => v,
            (_, None) => {
                panic!("compose.yml uses ${{{name}}}, which docker/.env.example does not define")
            }
        };
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_refuses_to_start_without_a_key_encryption_key() {
    let text = std::fs::read_to_string(repo().join("docker/compose.yml")).expect("compose.yml");
    assert!(
        text.contains("${PMS_AUTH__KEY_ENCRYPTION_KEY:?"),
        "the signing keys must be sealed in every compose deployment"
    );
    assert_eq!(
        env_example()
            .get("PMS_AUTH__KEY_ENCRYPTION_KEY")
            .map(String::as_str),
        Some(""),
        "docker/.env.example must not ship a usable key"
    );
    let refused = std::panic::catch_unwind(|| substitute(&text, &env_example()));
    assert!(refused.is_err(), "an empty key must stop the substitution");
}

pub struct ComposeService {
    pub name: String,
    pub role: String,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<String>,
    pub healthcheck: Vec<String>,
}

/// The PMS services of docker/compose.yml, with variables substituted and merge keys applied.
pub fn pms_services() -> Vec<ComposeService> {
    let text = std::fs::read_to_string(repo().join("docker/compose.yml")).expect("compose.yml");
    let text = substitute(&text, &deployed_env());
    let mut doc: serde_norway::Value = serde_norway::from_str(&text).expect("compose.yml is YAML");
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().expect("services");
    let mut out = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("name").to_owned();
        if service["image"].as_str() != Some("pms-server:latest") {
            continue;
        }
        let command: Vec<String> = service["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect();
        assert_eq!(command.len(), 1, "{name}: one role");
        let env = service["environment"]
            .as_mapping()
            .expect("environment map")
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().expect("key").to_owned(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{v:?}")),
                )
            })
            .collect();
        let ports = service["ports"]
            .as_sequence()
            .map(|p| {
                p.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let healthcheck = service["healthcheck"]["test"]
            .as_sequence()
            .map(|p| {
                p.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        out.push(ComposeService {
            name,
            role: command[0].clone(),
            env,
            ports,
            healthcheck,
        });
    }
    out
}

#[test]
fn check_config_lists_the_ports_of_the_mode_it_checks() {
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(binary("pms-server"));
        command.args(args);
        for (key, _) in std::env::vars() {
            if key.starts_with("PMS_") {
                command.env_remove(key);
            }
        }
        let output = command.output().expect("run check-config");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // All-in-one (the default): the gateway and billing's gRPC, no internal service port.
    let all = run(&["check-config"]);
    assert!(all.contains("gateway   127.0.0.1:4004\n"), "{all}");
    assert!(all.contains("billing   gRPC 127.0.0.1:9001\n"), "{all}");
    for unused in [":4000", ":4001", ":4002", ":4005"] {
        assert!(!all.contains(unused), "{unused} in:\n{all}");
    }
    assert_eq!(run(&["check-config", "all"]), all);
    // One service per process: every service's address.
    let patient = run(&["check-config", "patient"]);
    assert!(
        patient.contains("patient   127.0.0.1:4000 db "),
        "{patient}"
    );
}

#[test]
fn every_service_has_a_valid_configuration() {
    let services = pms_services();
    let mut roles: Vec<&str> = services.iter().map(|s| s.role.as_str()).collect();
    roles.sort_unstable();
    let mut expected = ROLES.to_vec();
    expected.sort_unstable();
    assert_eq!(roles, expected, "one container per role");
    for service in &services {
        let mut command = std::process::Command::new(binary("pms-server"));
        command.arg("check-config");
        for (key, _) in std::env::vars() {
            if key.starts_with("PMS_") {
                command.env_remove(key);
            }
        }
        command.envs(&service.env);
        let output = command.output().expect("run check-config");
        assert!(
            output.status.success(),
            "{}: {}",
            service.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = String::from_utf8_lossy(&output.stdout);
        if service.role != "gateway" {
            assert!(
                summary.contains("events    kafka kafka:9092"),
                "{}: distributed services use Kafka:\n{summary}",
                service.name
            );
        }
    }
}

#[test]
fn urls_point_at_services_and_only_the_gateway_is_published() {
    let services = pms_services();
    let port_of = |name: &str, grpc: bool| -> String {
        let service = services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service `{name}`"));
        let key = format!(
            "PMS_{}__{}",
            service.role.to_uppercase(),
            if grpc { "GRPC_PORT" } else { "PORT" }
        );
        service
            .env
            .get(&key)
            .cloned()
            .unwrap_or_else(|| panic!("{name} sets {key}"))
    };
    for service in &services {
        for (key, value) in &service.env {
            if !key.ends_with("_URL") || key.contains("DATABASE") {
                continue;
            }
            let url = url::Url::parse(value)
                .unwrap_or_else(|_| panic!("{}: {key} is a URL", service.name));
            let host = url.host_str().expect("host");
            let grpc = key.contains("GRPC");
            assert_eq!(
                url.port().map(|p| p.to_string()),
                Some(port_of(host, grpc)),
                "{}: {key} matches {host}'s port",
                service.name
            );
        }
        let own_port = port_of(&service.name, false);
        assert!(
            service
                .healthcheck
                .iter()
                .any(|t| t.contains(&format!(":{own_port}/health/ready"))),
            "{}: healthcheck on its own readiness",
            service.name
        );
        assert_eq!(
            service
                .env
                .get(&format!("PMS_{}__BIND", service.role.to_uppercase()))
                .map(String::as_str),
            Some("0.0.0.0"),
            "{}: reachable from other containers",
            service.name
        );
        if service.role == "gateway" {
            assert_eq!(service.ports.len(), 1, "the gateway is published");
        } else {
            assert!(
                service.ports.is_empty(),
                "{} must not be published",
                service.name
            );
        }
    }
}
