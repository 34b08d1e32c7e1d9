//! Offline checks of deploy/: the Helm chart lints and renders with each values file,
//! every rendered manifest validates strictly against Kubernetes' schemas and the
//! Prometheus operator's, the Dockerfile passes hadolint, the compose file the
//! compose-spec schema, the CI workflow actionlint and the workflow schema, the alert
//! rules promtool's checks and unit tests, the dashboard parses; and a running node
//! exports every metric the dashboard and alerts query (`deploy/node.rs`). The checkers
//! come from scripts/test-services (SOUK_TEST_* variables).

mod node;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::TempDir;

/// The Kubernetes versions manifests are validated against: the chart's minimum
/// (Chart.yaml kubeVersion) and the EKS cluster's (deploy/eks/cluster.yaml).
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.33.0"];

/// Values sets the chart is rendered with: name and file (`-` = the chart's defaults).
const VALUE_SETS: [(&str, &str); 4] = [
    ("default", "-"),
    ("local", "deploy/helm/souk/values-local.yaml"),
    ("eks", "deploy/helm/souk/values-eks.yaml"),
    ("everything", "deploy/checks/values-everything.yaml"),
];

/// A path in the repository.
pub(crate) fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The checker an SOUK_TEST_* variable points at.
pub(crate) fn checker(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run `eval \"$(scripts/test-services)\"` (it installs the deploy checkers)")
    })
}

/// Runs a checker from the repository root; fails the test with its output unless it
/// succeeds. Returns what it printed.
pub(crate) fn run(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let output = command
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{printed}",
        output.status
    );
    printed
}

/// `deploy/checks/deploy_check.py <args>` with the checkers' Python.
pub(crate) fn deploy_check(args: &[&str]) -> Command {
    let mut command = Command::new(checker("SOUK_TEST_DEPLOY_PYTHON"));
    command
        .arg(repo("deploy/checks/deploy_check.py"))
        .args(args);
    command
}

/// Lints and renders the chart with every values set into `out/<name>/`.
fn render_chart(out: &Path) -> String {
    let chart = repo("deploy/helm/souk");
    let mut args = vec![
        "chart".to_owned(),
        chart.display().to_string(),
        out.display().to_string(),
    ];
    for (name, file) in VALUE_SETS {
        let file = if file == "-" {
            "-".to_owned()
        } else {
            repo(file).display().to_string()
        };
        args.push(format!("{name}={file}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&mut deploy_check(&args))
}

#[test]
fn helm_chart_lints_and_renders_with_each_values_file() {
    let out = TempDir::new();
    let printed = render_chart(&out.0);
    for (name, _) in VALUE_SETS {
        assert!(
            printed.contains(&format!("[{name}] lint clean")),
            "{printed}"
        );
    }
    // The EKS values switch on what a production cluster runs.
    let eks = std::fs::read_to_string(out.0.join("eks/kubernetes.yaml")).unwrap();
    for kind in [
        "kind: StatefulSet",
        "kind: HorizontalPodAutoscaler",
        "kind: PodDisruptionBudget",
        "kind: Ingress",
        "publishNotReadyAddresses: true",
        "fieldPath: metadata.name",
    ] {
        assert!(eks.contains(kind), "EKS render lacks `{kind}`:\n{eks}");
    }
    // Its ingress routes every public path a node serves: the API, the console and the
    // account pages the mails link to.
    for path in ["path: /api", "path: /admin", "path: /account"] {
        assert!(eks.contains(path), "EKS ingress lacks `{path}`:\n{eks}");
    }
}

#[test]
fn rendered_manifests_validate_strictly_against_kubernetes_schemas() {
    let out = TempDir::new();
    render_chart(&out.0);
    let mut files: Vec<PathBuf> = VALUE_SETS
        .iter()
        .map(|(name, _)| out.0.join(name).join("kubernetes.yaml"))
        .collect();
    files.push(repo("deploy/helm/dev-dependencies.yaml"));
    for version in KUBERNETES_VERSIONS {
        let printed = run(Command::new(checker("SOUK_TEST_KUBERNETES_VALIDATE"))
            .args(["--strict", "--kubernetes-version", version])
            .args(&files));
        // An unknown kind or apiVersion is only a warning to kubernetes-validate.
        assert!(
            !printed.contains("WARN") && !printed.contains("ERROR"),
            "kubernetes-validate {version}:\n{printed}"
        );
        let passed = printed.matches(" passed for resource ").count();
        assert!(passed >= 30, "only {passed} objects validated:\n{printed}");
    }
}

#[test]
fn rendered_custom_resources_validate_against_the_prometheus_operator_models() {
    let out = TempDir::new();
    render_chart(&out.0);
    let default = std::fs::read_to_string(out.0.join("default/custom-resources.yaml")).unwrap();
    assert!(
        default.trim().is_empty() || default.trim() == "[]",
        "the defaults need no Prometheus operator: {default}"
    );
    let eks = out.0.join("eks/custom-resources.yaml");
    let everything = out.0.join("everything/custom-resources.yaml");
    let printed = run(&mut deploy_check(&[
        "custom-resources",
        eks.to_str().unwrap(),
        everything.to_str().unwrap(),
    ]));
    for object in ["ServiceMonitor/souk valid", "PrometheusRule/souk valid"] {
        assert_eq!(printed.matches(object).count(), 2, "{printed}");
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    run(Command::new(checker("SOUK_TEST_HADOLINT"))
        .args(["--failure-threshold", "info"])
        .arg(repo("deploy/Dockerfile")));
}

#[test]
fn compose_file_matches_the_compose_spec() {
    run(Command::new(checker("SOUK_TEST_CHECK_JSONSCHEMA"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(repo("deploy/compose.yaml")));
}

#[test]
fn ci_workflow_passes_actionlint_and_the_workflow_schema() {
    let workflow = repo("deploy/github/workflows/souk.yml");
    run(Command::new(checker("SOUK_TEST_ACTIONLINT")).arg(&workflow));
    run(Command::new(checker("SOUK_TEST_CHECK_JSONSCHEMA"))
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&workflow));
}

#[test]
fn alert_rules_and_prometheus_config_pass_promtool() {
    let promtool = checker("SOUK_TEST_PROMTOOL");
    let checked = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(repo("deploy/helm/souk/files/souk-alerts.yaml")));
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(repo("deploy/observability/souk-alerts.test.yaml")));
    assert!(tested.contains("SUCCESS"), "{tested}");
    run(Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(repo("deploy/compose/prometheus.yml")));
}

#[test]
fn grafana_dashboard_parses_and_queries_through_its_data_source_variable() {
    let text = std::fs::read_to_string(repo("deploy/helm/souk/files/souk-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "souk-overview");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    let mut queries = 0;
    for panel in panels {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{panel}");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        let targets = panel["targets"].as_array().expect("panel targets");
        assert!(!targets.is_empty(), "panel without queries: {panel}");
        for target in targets {
            assert!(
                target["expr"].as_str().is_some_and(|expr| !expr.is_empty()),
                "{target}"
            );
            queries += 1;
        }
    }
    assert!(queries >= 20, "{queries} queries");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables
        .iter()
        .any(|variable| variable["name"] == "datasource" && variable["type"] == "datasource"));
}

#[test]
fn other_deploy_yaml_files_parse() {
    let files = [
        "deploy/compose/prometheus.yml",
        "deploy/compose/grafana/provisioning/datasources/prometheus.yaml",
        "deploy/compose/grafana/provisioning/dashboards/souk.yaml",
        "deploy/eks/cluster.yaml",
        "deploy/logging/fluent-bit.yaml",
        "deploy/logging/fluent-bit-compose.yaml",
        "deploy/observability/souk-alerts.test.yaml",
    ];
    let paths: Vec<String> = files
        .iter()
        .map(|file| repo(file).display().to_string())
        .collect();
    let mut args = vec!["yaml"];
    args.extend(paths.iter().map(String::as_str));
    let printed = run(&mut deploy_check(&args));
    assert_eq!(printed.matches("parse").count(), files.len(), "{printed}");
    serde_json::from_str::<Value>(
        &std::fs::read_to_string(repo("deploy/logging/souk-index-template.json")).unwrap(),
    )
    .expect("the index template is JSON");
}
