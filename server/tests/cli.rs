//! The real `mesh-metrics` binary: help text, failing fast on bad input, serving
//! with certificate files, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mesh-metrics");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env_clear().output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_flag() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--mesh",
        "--prometheus-url",
        "--prometheus-timeout",
        "--bind-address",
        "--secure-port",
        "--tls-cert-file",
        "--tls-private-key-file",
        "--authorization-mode",
        "--default-window",
        "--max-window",
        "--evaluation-interval",
        "--cache-max-bytes",
        "--log-level",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
    assert!(out.contains("AlwaysAllow") && out.contains("Delegated"));
}

#[test]
fn bad_input_fails_fast_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["--no-such-flag"], "unexpected argument"),
        (&["--mesh", "linkerd"], "--prometheus-url"),
        (
            &["--config", "/nonexistent/mesh-metrics.yaml"],
            "cannot read config file",
        ),
        (
            &[
                "--mesh",
                "linkerd",
                "--prometheus-url",
                "u",
                "--secure-port",
                "99999",
            ],
            "99999",
        ),
        (
            &[
                "--mesh",
                "linkerd",
                "--prometheus-url",
                "u",
                "--authorization-mode",
                "Open",
            ],
            "Open",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, _, err) = run(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        "ftp://x",
        "--secure-port",
        "0",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("scheme must be http or https"), "{err}");
}

#[test]
fn serves_with_certificate_files_and_exits_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "http://127.0.0.1:1",
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--secure-port",
            &port.to_string(),
            "--authorization-mode",
            "AlwaysAllow",
        ])
        .arg("--tls-cert-file")
        .arg(&crt)
        .arg("--tls-private-key-file")
        .arg(&key)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // drain the log in a thread, so the server never writes to a closed pipe
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("serving metrics.smi-spec.io/v1alpha1") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    assert!(started, "server did not log that it started");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let r = client
            .get(format!(
                "https://localhost:{port}/apis/metrics.smi-spec.io/v1alpha1"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    });
    assert!(body.contains("APIResourceList"));

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut waited = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(waited < 100, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    };
    let log = log.join().unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}
