//! The API surface: discovery, health, errors as `Status`, methods, windows,
//! behaviour while Prometheus is down or slow, and request coalescing.

use std::net::TcpListener;
use std::time::Duration;

use e2e::{env, timestamp, TestServer, BASE};
use serde_json::Value;

fn assert_status(body: &Value, code: u16, reason: &str, ctx: &str) {
    assert_eq!(body["kind"], "Status", "{ctx}: {body}");
    assert_eq!(body["apiVersion"], "v1", "{ctx}");
    assert_eq!(body["status"], "Failure", "{ctx}");
    assert_eq!(body["code"], code, "{ctx}");
    assert_eq!(body["reason"], reason, "{ctx}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 10),
        "{ctx}: message must explain"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_documents() {
    let s = &env().server;
    let (code, ctype, v) = s.get("/apis").await;
    assert_eq!((code, ctype.as_str()), (200, "application/json"));
    assert_eq!(v["kind"], "APIGroupList");
    assert_eq!(v["groups"][0]["name"], "metrics.smi-spec.io");
    let (_, _, v) = s.get("/apis/metrics.smi-spec.io").await;
    assert_eq!(v["kind"], "APIGroup");
    assert_eq!(
        v["preferredVersion"]["groupVersion"],
        "metrics.smi-spec.io/v1alpha1"
    );
    for path in [BASE.to_string(), format!("{BASE}/")] {
        let (code, _, v) = s.get(&path).await;
        assert_eq!(code, 200);
        assert_eq!(v["kind"], "APIResourceList");
        assert_eq!(v["groupVersion"], "metrics.smi-spec.io/v1alpha1");
        let names: Vec<&str> = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for k in [
            "pods",
            "deployments",
            "daemonsets",
            "statefulsets",
            "namespaces",
            "jobs",
        ] {
            assert!(names.contains(&k), "{k} missing from {names:?}");
        }
        for r in v["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            if name.ends_with("/edges") {
                assert_eq!(r["verbs"], serde_json::json!(["get"]), "{name}");
                continue;
            }
            // each resource has its own Kind, so kubectl maps each to itself
            assert!(
                r["kind"].as_str().unwrap().ends_with("TrafficMetrics"),
                "{name}"
            );
            assert_eq!(r["verbs"], serde_json::json!(["get", "list"]));
            assert_eq!(r["namespaced"], name != "namespaces");
        }
        let last = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|r| !r["name"].as_str().unwrap().contains('/'))
            .unwrap();
        assert_eq!(last["name"], "trafficmetrics");
        assert_eq!(last["kind"], "TrafficMetrics");
        assert_eq!(last["shortNames"], serde_json::json!(["tm"]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_probes() {
    let s = &env().server;
    for p in ["/healthz", "/livez", "/readyz", "/readyz/ping", "/livez/"] {
        let (code, ctype, v) = s.get(p).await;
        assert_eq!(code, 200, "{p}");
        assert!(ctype.starts_with("text/plain"), "{p}");
        assert_eq!(v, "ok", "{p}");
    }
    let (_, _, v) = s.get("/readyz?verbose").await;
    assert!(v.as_str().unwrap().contains("[+]ping ok"), "{v}");
    let (code, _, _) = s.get("/readyz/nope").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_kubernetes_status_objects() {
    let s = &env().server;
    let cases: &[(&str, u16, &str)] = &[
        ("/api", 404, "NotFound"),
        ("/apis/other.io/v1/things", 404, "NotFound"),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/services",
            404,
            "NotFound",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/replicasets",
            404,
            "NotFound",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/deployments/web",
            404,
            "NotFound",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web/edges/x",
            404,
            "NotFound",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/Shop/deployments",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web%22%7D",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/a%5C",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments?t=-30s",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments?t=0s",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments?t=500ms",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments?t=soon",
            400,
            "BadRequest",
        ),
        (
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments?t=3h",
            400,
            "BadRequest",
        ),
    ];
    for (path, code, reason) in cases {
        let (got, ctype, body) = s.get(path).await;
        assert_eq!(got, *code, "{path}: {body}");
        assert_eq!(ctype, "application/json", "{path}");
        assert_status(&body, *code, reason, path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_get_and_head_are_allowed() {
    let s = &env().server;
    let path = format!("{BASE}/namespaces/shop/deployments");
    for m in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let resp = s
            .client()
            .request(m.clone(), format!("{}{path}", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{m}");
        assert_eq!(resp.headers()["allow"], "GET, HEAD");
        let body: Value = resp.json().await.unwrap();
        assert_status(&body, 405, "MethodNotAllowed", m.as_str());
    }
    let resp = s
        .client()
        .head(format!("{}{path}", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.text().await.unwrap().is_empty(), "HEAD has no body");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_query_parameters_and_trailing_slashes_are_tolerated() {
    let s = &env().server;
    let (code, _, v) = s
        .get(&format!(
            "{BASE}/namespaces/shop/deployments/?timeout=32s&limit=500&t=1m"
        ))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"][0]["window"], "1m0s");
    assert_eq!(
        v["metadata"]["selfLink"],
        format!("{BASE}/namespaces/shop/deployments")
    );
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_down_is_503_and_discovery_still_works() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let s = TestServer::start(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        &url,
        "--authorization-mode",
        "AlwaysAllow",
    ]);
    let (code, _, body) = s.get(&format!("{BASE}/namespaces/shop/deployments")).await;
    assert_eq!(code, 503, "{body}");
    assert_status(&body, 503, "ServiceUnavailable", "prometheus down");
    assert!(
        body["message"].as_str().unwrap().contains(&url),
        "message names the URL: {body}"
    );
    for p in [BASE, "/apis", "/healthz", "/readyz", "/livez"] {
        assert_eq!(s.get(p).await.0, 200, "{p} must not depend on Prometheus");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_prometheus_is_504() {
    // a TCP peer that accepts and never answers; it stops by itself
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(false).unwrap();
        for c in l.incoming().take(8) {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let s = TestServer::start(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        &url,
        "--prometheus-timeout",
        "1s",
        "--authorization-mode",
        "AlwaysAllow",
    ]);
    let (code, _, body) = s.get(&format!("{BASE}/namespaces/shop/deployments")).await;
    assert_eq!(code, 504, "{body}");
    assert_status(&body, 504, "Timeout", "slow prometheus");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_window_is_configurable() {
    let prom = env().prom.url();
    let s = TestServer::start(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        &prom,
        "--authorization-mode",
        "AlwaysAllow",
        "--max-window",
        "5m",
    ]);
    assert_eq!(
        s.get(&format!("{BASE}/namespaces/shop/deployments?t=5m"))
            .await
            .0,
        200
    );
    let (code, _, body) = s
        .get(&format!("{BASE}/namespaces/shop/deployments?t=6m"))
        .await;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("5m0s"), "{body}");
}

/// Fifty identical concurrent requests cost Prometheus one query per planned
/// query and time bucket, counted by Prometheus itself.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_requests_are_coalesced() {
    let env = env();
    let prom_queries = || async {
        let text = reqwest::get(format!("{}/metrics", env.prom.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| {
                l.starts_with("prometheus_http_requests_total{")
                    && l.contains("handler=\"/api/v1/query\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = prom_queries().await;
    let path = format!("{BASE}/namespaces/payments/deployments?t=7m");
    let answers = futures::future::join_all((0..50).map(|_| env.server.get(&path))).await;
    let mut buckets: Vec<i64> = answers
        .iter()
        .map(|(c, _, v)| {
            assert_eq!(*c, 200);
            timestamp(&v["items"][0])
        })
        .collect();
    buckets.sort();
    buckets.dedup();
    let after = prom_queries().await;
    let issued = after - before;
    assert!(
        issued >= 2.0 && issued <= 2.0 * buckets.len() as f64,
        "Prometheus saw {issued} queries for {} bucket(s)",
        buckets.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregated_discovery_and_openapi() {
    let s = &env().server;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let resp = s
        .client()
        .get(format!("{}/apis", s.url()))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["kind"], "APIGroupDiscoveryList");
    assert_eq!(v["items"][0]["metadata"]["name"], "metrics.smi-spec.io");
    let resources = v["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap();
    assert_eq!(resources.last().unwrap()["resource"], "trafficmetrics");

    let (code, _, v2) = s.get("/openapi/v2").await;
    assert_eq!(code, 200);
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["definitions"]["io.smi-spec.metrics.v1alpha1.TrafficMetrics"].is_object());
    let (_, _, index) = s.get("/openapi/v3").await;
    let url = index["paths"]["apis/metrics.smi-spec.io/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, v3) = s.get(&url).await;
    assert_eq!(code, 200, "{url}");
    assert_eq!(v3["openapi"], "3.0.0");
}

/// kubectl's Table: every row's cells agree with the object it carries, and the
/// objects agree with the ground truth.
#[tokio::test(flavor = "multi_thread")]
async fn tables_agree_with_objects_and_truth() {
    let env = env();
    let s = &env.server;
    let truth = env.dataset.truth(meshsim::Mesh::Linkerd);
    let resp = s
        .client()
        .get(format!(
            "{}{BASE}/namespaces/shop/trafficmetrics?includeObject=Object&t=1m",
            s.url()
        ))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    );
    let table: Value = resp.json().await.unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert!(rows.len() >= 6, "{table}");
    for row in rows {
        let obj = &row["object"];
        let cells = row["cells"].as_array().unwrap();
        assert_eq!(cells[col("Name")], obj["metadata"]["name"]);
        let r = &obj["resource"];
        let kind = match r["kind"].as_str().unwrap() {
            "Deployment" => meshsim::Kind::Deployment,
            "Statefulset" => meshsim::Kind::StatefulSet,
            "Daemonset" => meshsim::Kind::DaemonSet,
            "Job" => meshsim::Kind::Job,
            other => panic!("unexpected kind {other}"),
        };
        let res = meshsim::Res::new(kind, "shop", r["name"].as_str().unwrap());
        let exp = truth.resource(&res, timestamp(obj), 60);
        e2e::assert_metrics(obj, &exp, &format!("table row {res:?}"));
        assert_eq!(
            cells[col("Requests")],
            (exp.success + exp.failure) as i64,
            "{res:?}"
        );
        assert_eq!(cells[col("Failures")], exp.failure as i64, "{res:?}");
        let rps = (exp.success + exp.failure) as f64 / 60.0;
        let shown: f64 = cells[col("RPS")].as_str().unwrap().parse().unwrap();
        assert!(
            (shown - rps).abs() <= 0.05 + 1e-9,
            "{res:?}: rps {shown} vs {rps}"
        );
    }
}
