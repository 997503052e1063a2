//! Runs `meshsim generate`, loads its `data.om` with [`PromServer::start_from_file`] and checks
//! a few values of its `truth.json`.

use std::process::Command;

use meshsim::PromServer;

#[test]
fn generate_writes_loadable_data_and_matching_truth() {
    let dir = tempfile::tempdir().unwrap();
    let start = 1_790_000_000;
    let status = Command::new(env!("CARGO_BIN_EXE_meshsim"))
        .args(["generate", "--mesh", "linkerd", "--out"])
        .arg(dir.path())
        .args([
            "--start",
            &start.to_string(),
            "--end",
            &(start + 600).to_string(),
        ])
        .args([
            "--truth-at",
            &(start + 400).to_string(),
            "--windows",
            "30s,5m",
        ])
        .status()
        .unwrap();
    assert!(status.success());

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("truth.json")).unwrap())
            .unwrap();
    assert_eq!(truth["mesh"], "linkerd");
    assert_eq!(truth["truth_at"], start + 400);
    let windows = truth["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[1]["window_secs"], 300);

    let prom = PromServer::start_from_file(&dir.path().join("data.om")).unwrap();
    for window in windows {
        let w = window["window_secs"].as_i64().unwrap();
        let resources = window["resources"].as_array().unwrap();
        let api = resources
            .iter()
            .find(|r| r["resource"]["kind"] == "Deployment" && r["resource"]["name"] == "api")
            .unwrap();
        for (class, field) in [("success", "success"), ("failure", "failure")] {
            let promql = format!(
                r#"sum(increase(response_total{{direction="inbound",namespace="shop",deployment="api",classification="{class}"}}[{w}s]))"#
            );
            let got = prom.query(&promql, start + 400).unwrap()[0].value;
            assert_eq!(got, api["expected"][field].as_f64().unwrap(), "{promql}");
        }
        let to_ledger = api["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["direction"] == "to" && e["peer"]["name"] == "ledger")
            .unwrap();
        let promql = format!(
            r#"sum(increase(response_total{{direction="outbound",namespace="shop",deployment="api",dst_namespace="payments",dst_deployment="ledger"}}[{w}s]))"#
        );
        let got = prom.query(&promql, start + 400).unwrap()[0].value;
        let e = &to_ledger["expected"];
        assert_eq!(
            got,
            e["success"].as_f64().unwrap() + e["failure"].as_f64().unwrap()
        );
    }
}
