//! docker/aws/ (the CDK app for ECS Fargate) is verified without an AWS account: `npm ci`, then
//! `npm run check` (tsc, `cdk synth` with the fixed account/region of cdk.json, cfn-lint on the
//! template, the template assertions of docker/aws/test), then the synthesized template is read
//! against docker/compose.yml and `pms-server`'s configuration. Takes 1–3 minutes (npm ci and two
//! syntheses), printed below.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::compose::pms_services;
use crate::deploy_kubernetes::{configuration_keys, deploy_tool};

fn aws_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker/aws")
}

/// Longest an npm step may run before it is killed (with its children) and, for `npm ci`, tried
/// once more: a registry stall once held `npm ci` asleep for 17 minutes with no connection open
/// (the same step takes seconds; run again, it did), which holds CI until its own limit.
const NPM_CI_LIMIT: Duration = Duration::from_secs(6 * 60);
const NPM_CHECK_LIMIT: Duration = Duration::from_secs(10 * 60);

/// Runs `npm args` in docker/aws; its exit status and output, or `None` when it ran past `limit`
/// and was killed.
fn npm_within(args: &[&str], limit: Duration) -> Option<(std::process::ExitStatus, String)> {
    // cfn-lint from the venv scripts/test-services installs, ahead of anything else on PATH.
    let cfn_lint = deploy_tool("cfn-lint");
    let tools = cfn_lint.parent().expect("bin dir").to_owned();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(&path)))
        .expect("PATH");
    // Output to a file, not pipes: a killed npm's children could hold a pipe open. One open file
    // for both streams (a shared offset: neither overwrites the other).
    let log = tempfile::NamedTempFile::new().expect("npm log file");
    let out = log.reopen().expect("npm log");
    let mut child = Command::new(deploy_tool("npm"))
        .args(args)
        .current_dir(aws_dir())
        .env("PATH", path)
        // No telemetry or notices from the CDK CLI: CI needs no network beyond the registry.
        .env("CDK_DISABLE_CLI_TELEMETRY", "true")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("npm log"))
        .stderr(out)
        // Its own process group, so a kill reaches the children npm starts.
        .process_group(0)
        .spawn()
        .expect("run npm");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for npm") {
            let output = std::fs::read_to_string(log.path()).unwrap_or_default();
            return Some((status, output));
        }
        if started.elapsed() > limit {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(log.path()).unwrap_or_default();
            eprintln!(
                "npm {} ran past {limit:?}, killed; its output:\n{output}",
                args.join(" ")
            );
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `npm args`, tried `attempts` times while it runs past `limit`; panics with npm's output when
/// it fails.
fn npm(args: &[&str], limit: Duration, attempts: u32) {
    for _ in 0..attempts {
        let Some((status, output)) = npm_within(args, limit) else {
            continue;
        };
        assert!(
            status.success(),
            "npm {}: {status}\n{output}",
            args.join(" ")
        );
        return;
    }
    panic!("npm {} ran past {limit:?} {attempts} times", args.join(" "));
}

#[test]
fn cdk_app_synthesizes_passes_cfn_lint_and_agrees_with_the_configuration() {
    let started = Instant::now();
    npm(
        &["ci", "--no-audit", "--no-fund", "--prefer-offline"],
        NPM_CI_LIMIT,
        2,
    );
    let installed = started.elapsed();
    npm(&["run", "check"], NPM_CHECK_LIMIT, 1);
    eprintln!(
        "docker/aws: npm ci {:.0?}, build + synth + cfn-lint + assertions {:.0?}",
        installed,
        started.elapsed() - installed
    );

    let text = std::fs::read_to_string(aws_dir().join("cdk.out/Pms.template.json"))
        .expect("cdk synth wrote cdk.out/Pms.template.json");
    let template: serde_json::Value = serde_json::from_str(&text).expect("template is JSON");
    let known = configuration_keys();
    let compose = pms_services();
    let mut roles = Vec::new();
    for resource in template["Resources"]
        .as_object()
        .expect("Resources")
        .values()
    {
        if resource["Type"] != "AWS::ECS::TaskDefinition" {
            continue;
        }
        for container in resource["Properties"]["ContainerDefinitions"]
            .as_array()
            .expect("containers")
        {
            let role = container["Command"][0].as_str().expect("role").to_owned();
            let upper = role.to_uppercase();
            let compose = compose.iter().find(|c| c.role == role).expect("in compose");
            let names = |field: &str| -> Vec<(String, serde_json::Value)> {
                container[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e["Name"].as_str().expect("name").to_owned(),
                            e["Value"].clone(),
                        )
                    })
                    .collect()
            };
            let env = names("Environment");
            for (name, _) in env.iter().chain(names("Secrets").iter()) {
                assert!(
                    known.contains(name),
                    "{role}: {name} is no pms-server setting"
                );
            }
            // Same ports as compose, and the port mappings say the same.
            for key in [
                format!("PMS_{upper}__PORT"),
                format!("PMS_{upper}__GRPC_PORT"),
            ] {
                let value = env.iter().find(|(n, _)| *n == key).map(|(_, v)| v.clone());
                assert_eq!(
                    value.as_ref().and_then(|v| v.as_str()),
                    compose.env.get(&key).map(String::as_str),
                    "{role}: {key} as in compose"
                );
                if let Some(port) = value.as_ref().and_then(|v| v.as_str()) {
                    let mapped = container["PortMappings"]
                        .as_array()
                        .expect("port mappings")
                        .iter()
                        .any(|m| {
                            m["ContainerPort"]
                                .as_u64()
                                .map(|p| p.to_string())
                                .as_deref()
                                == Some(port)
                        });
                    assert!(mapped, "{role}: port {port} mapped");
                }
            }
            // Service URLs: the same ports as compose's, on the Cloud Map names.
            for (name, value) in &env {
                if let (true, Some(value)) = (name.ends_with("_URL"), value.as_str()) {
                    let url = url::Url::parse(value).expect("URL");
                    let expected = url::Url::parse(&compose.env[name]).expect("compose URL");
                    assert_eq!(url.port(), expected.port(), "{role}: {name}");
                    assert_eq!(
                        url.host_str().map(|h| h.split('.').next().unwrap_or(h)),
                        expected.host_str(),
                        "{role}: {name}"
                    );
                }
            }
            roles.push(role);
        }
    }
    roles.sort();
    assert_eq!(
        roles,
        ["analytics", "auth", "billing", "gateway", "patient"]
    );
}
