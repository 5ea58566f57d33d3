//! docker/kubernetes/ is verified without a cluster: every manifest (the rendered example overlay
//! and each file of base and overlay) passes `kubernetes-validate` against a pinned Kubernetes
//! version, and the manifests agree with docker/compose.yml and with `pms-server`'s configuration
//! (every `PMS_*` key exists, the same ports, probes and service URLs, each Deployment's
//! environment is a valid configuration, secrets only from the Secret and fail-closed placeholders).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use pms_e2e::binary;
use serde_norway::Value;

use crate::compose::pms_services;

/// The Kubernetes release the manifests are validated against (the oldest one we support).
const KUBERNETES_VERSION: &str = "1.32.0";
const ROLES: [&str; 5] = ["auth", "billing", "patient", "analytics", "gateway"];
/// Configuration keys that only ever come from the Secret (`pms-secrets`).
const SECRET_KEYS: [&str; 4] = [
    "PMS_DATABASE__URL",
    "PMS_ADMIN_PASSWORD",
    "PMS_AUTH__KEY_ENCRYPTION_KEY",
    "PMS_HTTP__METRICS_TOKEN",
];

pub fn kubernetes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker/kubernetes")
}

/// A deployment tool from the venv scripts/test-services installs (`PMS_DEPLOY_VENV`), else from
/// PATH. Panics with the fix when it is missing: this suite never skips.
pub fn deploy_tool(name: &str) -> PathBuf {
    let venv = std::env::var("PMS_DEPLOY_VENV")
        .unwrap_or_else(|_| "/opt/pms-tools/deploy-venv".to_owned());
    let in_venv = Path::new(&venv).join("bin").join(name);
    if in_venv.is_file() {
        return in_venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("{name} is missing: run scripts/test-services (installs it into {venv})")
    })
}

/// `kubectl kustomize` of the example overlay.
pub fn rendered_overlay() -> String {
    let output = Command::new(deploy_tool("kubectl"))
        .arg("kustomize")
        .arg(kubernetes_dir().join("overlays/example"))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize overlays/example: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 manifests")
}

/// The objects of a multi-document YAML text.
pub fn documents(text: &str) -> Vec<Value> {
    text.split("\n---")
        .map(|doc| serde_norway::from_str::<Value>(doc).expect("manifest is YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn objects<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

pub fn string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// Files under docker/kubernetes/ that are not Kubernetes objects, each with the reason.
const NOT_OBJECTS: [(&str, &str); 4] = [
    (
        "kustomization.yaml",
        "kustomize's own file, not an API object",
    ),
    (
        "pms-alerts.rules.yaml",
        "a Prometheus rules file (in a ConfigMap)",
    ),
    (
        "prometheus-adapter-values.yaml",
        "Helm values of prometheus-adapter",
    ),
    ("secrets.env", "secretGenerator input"),
];

fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            manifest_files(&path, out);
        } else if NOT_OBJECTS.iter().any(|(skip, _)| *skip == name) {
            continue;
        } else {
            assert!(
                name.ends_with(".yaml"),
                "{}: unexpected file (add it to NOT_OBJECTS with a reason, or name it .yaml)",
                path.display()
            );
            out.push(path);
        }
    }
}

#[test]
fn every_kubernetes_manifest_passes_kubernetes_validate() {
    let rendered = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(rendered.path(), rendered_overlay()).expect("write rendered overlay");
    let mut files = Vec::new();
    manifest_files(&kubernetes_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 12, "base and overlay files: {files:?}");
    let output = Command::new(deploy_tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(rendered.path())
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        output.status.success(),
        "kubernetes-validate (Kubernetes {KUBERNETES_VERSION}):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn kubernetes_validate_refuses_a_misspelt_field() {
    // The validation above can fail: a typo in a security setting is an error, not a warning.
    let text = std::fs::read_to_string(kubernetes_dir().join("base/auth.yaml")).expect("auth.yaml");
    let broken = text.replace("readOnlyRootFilesystem", "readOnlyRootFilesystm");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), broken).expect("write");
    let output = Command::new(deploy_tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate");
    assert!(!output.status.success(), "a misspelt field must fail");
    assert!(String::from_utf8_lossy(&output.stdout).contains("readOnlyRootFilesystm"));
}

/// Environment variable names `pms-server` reads: `PMS_<SECTION>__<KEY>` for every key (set or
/// commented) of `pms-server default-config`, the top-level keys, and the names it spells out.
pub fn configuration_keys() -> BTreeSet<String> {
    let output = Command::new(binary("pms-server"))
        .arg("default-config")
        .output()
        .expect("run default-config");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_uppercase();
            continue;
        }
        let body = line.trim_start_matches('#').trim_start();
        if let Some((key, _)) = body.split_once(" = ")
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            keys.insert(match section.as_str() {
                "" => format!("PMS_{}", key.to_uppercase()),
                s => format!("PMS_{s}__{}", key.to_uppercase()),
            });
        }
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("PMS_") {
                keys.insert(word.to_owned());
            }
        }
    }
    assert!(keys.contains("PMS_ADMIN_PASSWORD") && keys.contains("PMS_GATEWAY__PATIENT_URL"));
    keys
}

/// One Deployment's container, flattened.
pub struct Workload {
    pub role: String,
    /// Name → literal value, or `secret:<key>` / `configmap:<name>:<key>`.
    pub env: BTreeMap<String, String>,
    pub ports: BTreeMap<String, String>,
    pub container: Value,
    pub pod: Value,
}

pub fn workloads(docs: &[Value]) -> Vec<Workload> {
    let config: BTreeMap<String, String> = objects(docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "pms-config")
        .expect("ConfigMap pms-config")["data"]
        .as_mapping()
        .expect("data")
        .iter()
        .map(|(k, v)| (string(k), string(v)))
        .collect();
    objects(docs, "Deployment")
        .into_iter()
        .map(|d| {
            let pod = d["spec"]["template"]["spec"].clone();
            let containers = pod["containers"].as_sequence().expect("containers");
            assert_eq!(containers.len(), 1, "one container per pod");
            let container = containers[0].clone();
            let args = container["args"].as_sequence().expect("args");
            let mut env = BTreeMap::new();
            for from in container["envFrom"].as_sequence().into_iter().flatten() {
                assert_eq!(from["configMapRef"]["name"], "pms-config");
                env.extend(config.clone());
            }
            for var in container["env"].as_sequence().expect("env") {
                let value = if let Some(v) = var.get("value") {
                    string(v)
                } else {
                    let key = &var["valueFrom"]["secretKeyRef"];
                    // kustomize's secretGenerator appends a content hash to the name.
                    assert!(string(&key["name"]).starts_with("pms-secrets"), "{var:?}");
                    format!("secret:{}", string(&key["key"]))
                };
                env.insert(string(&var["name"]), value);
            }
            let ports = container["ports"]
                .as_sequence()
                .expect("ports")
                .iter()
                .map(|p| (string(&p["name"]), string(&p["containerPort"])))
                .collect();
            Workload {
                role: string(&args[0]),
                env,
                ports,
                container,
                pod,
            }
        })
        .collect()
}

#[test]
fn manifests_agree_with_compose_and_the_configuration() {
    let docs = documents(&rendered_overlay());
    let known = configuration_keys();
    let compose = pms_services();
    let workloads = workloads(&docs);
    let mut roles: Vec<&str> = workloads.iter().map(|w| w.role.as_str()).collect();
    roles.sort_unstable();
    let mut expected = ROLES.to_vec();
    expected.sort_unstable();
    assert_eq!(roles, expected, "one Deployment per role");
    let services: BTreeMap<String, &Value> = objects(&docs, "Service")
        .into_iter()
        .map(|s| (string(&s["metadata"]["name"]), s))
        .collect();
    // Service name + port → the role behind it.
    let mut endpoints = BTreeMap::new();
    for w in &workloads {
        let upper = w.role.to_uppercase();
        let c = compose
            .iter()
            .find(|c| c.role == w.role)
            .expect("compose service");
        // Every PMS_* key of the manifest and of compose is one the server reads.
        for key in w.env.keys().chain(c.env.keys()) {
            if key.starts_with("PMS_") {
                assert!(
                    known.contains(key),
                    "{}: {key} is no pms-server setting",
                    w.role
                );
            }
        }
        for key in SECRET_KEYS {
            if let Some(value) = w.env.get(key) {
                assert!(
                    value.starts_with("secret:"),
                    "{}: {key} only from the Secret",
                    w.role
                );
            }
        }
        // Same listening ports as compose, and the container's named ports say the same.
        for (port_key, name) in [("PORT", "http"), ("GRPC_PORT", "grpc")] {
            let key = format!("PMS_{upper}__{port_key}");
            let Some(port) = w.env.get(&key) else {
                assert!(!c.env.contains_key(&key), "{}: {key} as in compose", w.role);
                continue;
            };
            assert_eq!(
                Some(port),
                c.env.get(&key),
                "{}: {key} as in compose",
                w.role
            );
            assert_eq!(w.ports.get(name), Some(port), "{}: port {name}", w.role);
            let service = services.get(&w.role).expect("a Service per role");
            let ports = service["spec"]["ports"].as_sequence().expect("ports");
            let sp = ports
                .iter()
                .find(|p| p["targetPort"] == name)
                .unwrap_or_else(|| panic!("{}: Service port for {name}", w.role));
            assert_eq!(
                &string(&sp["port"]),
                port,
                "{}: Service port {name}",
                w.role
            );
            endpoints.insert((w.role.clone(), port.clone()), w.role.clone());
        }
        assert_eq!(
            w.env.get(&format!("PMS_{upper}__BIND")).map(String::as_str),
            Some("0.0.0.0")
        );
        // Probes on the service's own port, the same readiness path compose checks.
        for (probe, path) in [
            ("readinessProbe", "/health/ready"),
            ("livenessProbe", "/health/live"),
            ("startupProbe", "/health/live"),
        ] {
            let get = &w.container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{}: {probe}", w.role);
            assert_eq!(get["port"], "http", "{}: {probe}", w.role);
        }
        let ready = format!(":{}/health/ready", w.ports["http"]);
        assert!(
            c.healthcheck.iter().any(|t| t.contains(&ready)),
            "{}: compose checks {ready}",
            w.role
        );
    }
    // Service URLs name a Service and its port, and match compose's (same names and ports).
    for w in &workloads {
        let c = compose
            .iter()
            .find(|c| c.role == w.role)
            .expect("compose service");
        for (key, value) in &w.env {
            if !key.ends_with("_URL") || value.starts_with("secret:") {
                continue;
            }
            let url = url::Url::parse(value).unwrap_or_else(|_| panic!("{key}: a URL"));
            let host = url.host_str().expect("host").to_owned();
            let port = url.port().expect("explicit port").to_string();
            assert!(
                endpoints.contains_key(&(host.clone(), port.clone())),
                "{}: {key}={value} is no Service port",
                w.role
            );
            if let Some(compose_value) = c.env.get(key) {
                assert_eq!(compose_value, value, "{}: {key} as in compose", w.role);
            }
        }
    }
}
