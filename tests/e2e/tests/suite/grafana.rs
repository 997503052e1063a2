//! The Prometheus-compatible API Grafana's built-in datasource calls, replayed as
//! Grafana sends it (POST form bodies, then GET), with answers compared against
//! the real Prometheus for the equivalent raw query, and values against the
//! ground truth.

use e2e::{env, timestamp, BASE};
use meshsim::{Kind, Mesh, Res};
use serde_json::Value;

async fn post(path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let s = &env().server;
    let resp = s
        .client()
        .post(format!("{}{path}", s.url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

async fn get(path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let s = &env().server;
    let resp = s
        .client()
        .get(format!("{}{path}", s.url()))
        .query(query)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

async fn prom(path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", env().prom.url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

/// The current evaluation time of the shared server (a multiple of 10 s).
async fn now() -> i64 {
    let (_, _, v) = env().server.get(&format!("{BASE}/namespaces/shop")).await;
    timestamp(&v)
}

#[tokio::test(flavor = "multi_thread")]
async fn save_and_test_health_check_matches_prometheus() {
    let form = [("query", "1+1"), ("time", "4")];
    let ours = post("/prometheus/api/v1/query", &form).await;
    let theirs = prom("/api/v1/query", &form).await;
    assert_eq!(
        ours, theirs,
        "the health check must answer exactly like Prometheus"
    );
    assert_eq!(ours.1["data"]["result"], serde_json::json!([4, "2"]));
    // through the aggregated path too, and as GET
    let (code, v) = get(
        "/apis/metrics.smi-spec.io/v1alpha1/prometheus/api/v1/query",
        &form,
    )
    .await;
    assert_eq!((code, &v), (200, &theirs.1));
    for path in ["/prometheus/api/v1/status/buildinfo"] {
        let (code, v) = post(path, &[]).await;
        assert_eq!(code, 200);
        assert!(
            v["data"]["version"].as_str().unwrap().starts_with("2."),
            "{v}"
        );
        assert!(
            v["data"].get("features").is_none(),
            "no features: not Mimir"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn editor_lookups() {
    let (_, names) = get("/prometheus/api/v1/label/__name__/values", &[]).await;
    assert_eq!(names["status"], "success");
    assert!(names["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "smi_requests_per_second"));
    let (_, labels) = post("/prometheus/api/v1/labels", &[]).await;
    for l in ["namespace", "kind", "name", "direction", "quantile"] {
        assert!(
            labels["data"].as_array().unwrap().iter().any(|n| n == l),
            "{l}"
        );
    }
    let (_, ns) = get(
        "/prometheus/api/v1/label/namespace/values",
        &[("match[]", "smi_success_count{kind=\"namespace\"}")],
    )
    .await;
    let ns: Vec<&str> = ns["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let truth = env().dataset.truth(Mesh::Linkerd);
    let end = now().await;
    let expected: Vec<String> = truth
        .list(Kind::Namespace, None, end, 30)
        .into_iter()
        .map(|(r, _)| r.name)
        .collect();
    assert_eq!(ns, expected);
    let (_, series) = post(
        "/prometheus/api/v1/series",
        &[(
            "match[]",
            "smi_success_count{kind=\"deployment\", namespace=\"shop\"}",
        )],
    )
    .await;
    let names: Vec<&str> = series["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"web") && names.contains(&"store.v1"),
        "{names:?}"
    );
    assert!(series["data"][0]["__name__"] == "smi_success_count");
    let (_, meta) = get("/prometheus/api/v1/metadata", &[]).await;
    assert_eq!(
        meta["data"]["smi_response_latency_ms"][0]["unit"],
        "milliseconds"
    );
    let (code, err) = post("/prometheus/api/v1/series", &[]).await;
    assert_eq!((code, err["errorType"].as_str()), (400, Some("bad_data")));
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_queries_are_smi_numbers() {
    let truth = env().dataset.truth(Mesh::Linkerd);
    let t = now().await;
    let ts = t.to_string();
    let q = r#"smi_success_count{kind="deployment", namespace="shop", name="web", window="1m"}"#;
    let (code, v) = post("/prometheus/api/v1/query", &[("query", q), ("time", &ts)]).await;
    assert_eq!(code, 200, "{v}");
    let r = &v["data"]["result"][0];
    assert_eq!(r["metric"]["window"], "1m0s");
    let exp = truth.resource(&Res::new(Kind::Deployment, "shop", "web"), t, 60);
    assert_eq!(r["value"][1], exp.success.to_string());
    assert_eq!(r["value"][0], t);

    let q = r#"sum by (namespace) (smi_failure_count{kind="deployment", window="5m"})"#;
    let (_, v) = post("/prometheus/api/v1/query", &[("query", q), ("time", &ts)]).await;
    for r in v["data"]["result"].as_array().unwrap() {
        let ns = r["metric"]["namespace"].as_str().unwrap();
        let want: u64 = truth
            .list(Kind::Deployment, Some(ns), t, 300)
            .iter()
            .map(|(_, e)| e.failure)
            .sum();
        assert_eq!(r["value"][1], want.to_string(), "{ns}");
        assert_eq!(
            r["metric"].as_object().unwrap().len(),
            1,
            "sum by keeps only namespace"
        );
    }

    let q = r#"topk(1, smi_requests_per_second{kind="deployment", namespace="shop", window="5m"})"#;
    let (_, v) = post("/prometheus/api/v1/query", &[("query", q), ("time", &ts)]).await;
    let top = truth
        .list(Kind::Deployment, Some("shop"), t, 300)
        .into_iter()
        .max_by_key(|(_, e)| e.success + e.failure)
        .unwrap();
    assert_eq!(
        v["data"]["result"][0]["metric"]["name"],
        top.0.name.as_str()
    );

    let q = r#"smi_requests_per_second{kind="deployment", namespace="shop", name="api", direction="from", window="1m"}"#;
    let (_, v) = post("/prometheus/api/v1/query", &[("query", q), ("time", &ts)]).await;
    let edges = truth.edges(&Res::new(Kind::Deployment, "shop", "api"), t, 60);
    let froms: Vec<_> = edges
        .iter()
        .filter(|e| e.direction == meshsim::Direction::From)
        .collect();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), froms.len());
}

/// A panel's range query: same timestamps as Prometheus for the equivalent raw
/// query, and every point equal to both Prometheus' raw answer and the truth.
#[tokio::test(flavor = "multi_thread")]
async fn range_queries_match_prometheus_and_truth() {
    let truth = env().dataset.truth(Mesh::Linkerd);
    let end = now().await;
    let start = end - 300;
    let (s, e) = (start.to_string(), end.to_string());
    let ours_q =
        r#"smi_success_count{kind="deployment", namespace="shop", name="web", window="1m"}"#;
    let raw_q = r#"sum(increase(response_total{direction="inbound", namespace="shop", deployment="web", classification="success"}[1m]))"#;
    let form = |q| {
        [
            ("query", q),
            ("start", s.as_str()),
            ("end", e.as_str()),
            ("step", "30"),
        ]
    };
    let (code, ours) = post("/prometheus/api/v1/query_range", &form(ours_q)).await;
    assert_eq!(code, 200, "{ours}");
    let (_, theirs) = prom("/api/v1/query_range", &form(raw_q)).await;
    assert_eq!(ours["data"]["resultType"], theirs["data"]["resultType"]);
    let ours_values = &ours["data"]["result"][0]["values"];
    assert_eq!(
        ours_values, &theirs["data"]["result"][0]["values"],
        "same points as Prometheus"
    );
    for p in ours_values.as_array().unwrap() {
        let t = p[0].as_i64().unwrap();
        let exp = truth.resource(&Res::new(Kind::Deployment, "shop", "web"), t, 60);
        assert_eq!(p[1], exp.success.to_string(), "at {t}");
    }
    // GET works the same
    let (_, again) = get("/prometheus/api/v1/query_range", &form(ours_q)).await;
    assert_eq!(again, ours);
    // the scalar health check as a range query is a one-series matrix, like Prometheus
    let (_, ours) = post("/prometheus/api/v1/query_range", &form("1+1")).await;
    let (_, theirs) = prom("/api/v1/query_range", &form("1+1")).await;
    assert_eq!(ours, theirs);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_queries_are_bad_data_like_prometheus() {
    for q in [
        "sum(",
        "rate(smi_success_count[5m])",
        "smi_a / smi_b",
        r#"smi_success_count{direction="to"}"#,
    ] {
        let (code, v) = post("/prometheus/api/v1/query", &[("query", q)]).await;
        assert_eq!(code, 400, "{q}: {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().len() > 10);
    }
    let (_, theirs) = prom("/api/v1/query", &[("query", "sum(")]).await;
    assert_eq!(
        theirs["errorType"], "bad_data",
        "Prometheus agrees on the error type"
    );
    let (code, v) = post(
        "/prometheus/api/v1/query_range",
        &[("query", "1"), ("start", "10"), ("end", "1"), ("step", "1")],
    )
    .await;
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
}

/// Every panel and variable of the shipped dashboard answers with data, as Grafana
/// would ask for it (variables substituted, range queries over the last 5 minutes).
#[tokio::test(flavor = "multi_thread")]
async fn shipped_dashboard_draws() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/mesh-metrics/dashboards/mesh-metrics.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let subst = |s: &str| {
        s.replace("$kind", "deployment")
            .replace("$namespace", "shop")
            .replace("$workload", "api")
    };
    for var in dash["templating"]["list"].as_array().unwrap() {
        let Some(q) = var["query"]["query"].as_str() else {
            continue;
        };
        let q = subst(q);
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .expect("label_values variable");
        let (selector, label) = inner.rsplit_once(", ").unwrap();
        let (code, v) = get(
            &format!("/prometheus/api/v1/label/{label}/values"),
            &[("match[]", selector)],
        )
        .await;
        assert_eq!(code, 200, "{q}: {v}");
        assert!(
            !v["data"].as_array().unwrap().is_empty(),
            "variable {q} has values"
        );
    }
    let end = now().await;
    let (s, e) = ((end - 300).to_string(), end.to_string());
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let q = subst(target["expr"].as_str().unwrap());
            let (code, v) = if target["instant"] == true {
                post("/prometheus/api/v1/query", &[("query", &q), ("time", &e)]).await
            } else {
                post(
                    "/prometheus/api/v1/query_range",
                    &[("query", &q), ("start", &s), ("end", &e), ("step", "30")],
                )
                .await
            };
            assert_eq!(code, 200, "{}: {q}: {v}", panel["title"]);
            assert!(
                !v["data"]["result"].as_array().unwrap().is_empty(),
                "{}: {q} drew nothing",
                panel["title"]
            );
        }
    }
}
