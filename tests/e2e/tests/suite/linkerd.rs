//! Linkerd numbers: every kind, list, object and edge the server returns is
//! compared with the simulator's independently computed ground truth.

use e2e::{assert_metrics, env, kind, metric, timestamp, BASE};
use meshsim::{Expected, Kind, Mesh, Res, View};
use serde_json::Value;

use crate::smi::{self, expect_res, res_of};

#[tokio::test(flavor = "multi_thread")]
async fn lists_match_ground_truth_for_every_kind_and_window() {
    smi::lists_match_ground_truth(View::Linkerd).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(View::Linkerd).await;
    // the demo topology must actually exercise the traps
    assert!(cov.failing_edges > 0, "no failing edge was checked");
    assert!(
        cov.cross_namespace > 0,
        "no cross-namespace edge was checked"
    );
    assert!(cov.self_edges > 0, "no self-edge was checked");
    assert!(cov.idle > 0, "no idle workload was checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_workload_is_zero_without_latency() {
    smi::unknown_object_is_zero(View::Linkerd).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_not_a_linkerd_kind() {
    smi::unsupported_kinds_answer_404(View::Linkerd).await;
}

/// Our quantiles are computed from one bucket query; Prometheus' own
/// histogram_quantile over the same data must agree.
#[tokio::test(flavor = "multi_thread")]
async fn latency_matches_prometheus_histogram_quantile() {
    let env = env();
    let (_, _, list) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments?t=5m"))
        .await;
    let items = list["items"].as_array().unwrap();
    let with_latency: Vec<&Value> = items
        .iter()
        .filter(|i| metric(i, "p50_response_latency").is_some())
        .collect();
    assert!(!with_latency.is_empty());
    let client = reqwest::Client::new();
    for item in with_latency {
        let name = item["resource"]["name"].as_str().unwrap();
        let at = timestamp(item);
        for (q, m) in [
            ("0.5", "p50_response_latency"),
            ("0.9", "p90_response_latency"),
            ("0.99", "p99_response_latency"),
        ] {
            let promql = format!(
                "histogram_quantile({q}, sum by (le) (rate(response_latency_ms_bucket{{direction=\"inbound\", namespace=\"shop\", deployment=\"{name}\"}}[5m])))"
            );
            let resp: Value = client
                .post(format!("{}/api/v1/query", env.prom.url()))
                .form(&[("query", promql.as_str()), ("time", &at.to_string())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let prom: f64 = resp["data"]["result"][0]["value"][1]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let ours = apiservice::quantity::parse(metric(item, m).unwrap()).unwrap();
            assert!(
                ours <= prom + 1e-9 && ours > prom - 0.001 - 1e-9,
                "{name} {m}: ours {ours}, Prometheus {prom}"
            );
        }
    }
}

/// The `trafficmetrics` resource lists every workload kind of a namespace, named
/// `<kind>-<name>`, with the same numbers as the per-kind resources.
#[tokio::test(flavor = "multi_thread")]
async fn trafficmetrics_list_is_every_workload_with_prefixed_names() {
    let env = env();
    let truth = env.dataset.truth(Mesh::Linkerd);
    for ns in ["shop", "payments", "platform", "batch"] {
        let path = format!("{BASE}/namespaces/{ns}/trafficmetrics?t=5m");
        let (code, _, body) = env.server.get(&path).await;
        assert_eq!(code, 200, "{path}: {body}");
        assert_eq!(
            body["resource"],
            serde_json::json!({"kind": "TrafficMetrics", "namespace": ns})
        );
        let items = body["items"].as_array().unwrap();
        let end = timestamp(&items[0]);
        let mut expected: Vec<(String, Res, Expected)> = [
            Kind::Deployment,
            Kind::StatefulSet,
            Kind::DaemonSet,
            Kind::Job,
        ]
        .into_iter()
        .flat_map(|k| truth.list(k, Some(ns), end, 300))
        .map(|(r, e)| {
            (
                format!(
                    "{}-{}",
                    &kind(r.kind).plural()[..kind(r.kind).plural().len() - 1],
                    r.name
                ),
                r,
                e,
            )
        })
        .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            expected.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            "{path}"
        );
        for (item, (name, r, exp)) in items.iter().zip(&expected) {
            assert_eq!(res_of(item), expect_res(r), "{name}");
            assert_eq!(
                item["metadata"]["selfLink"],
                format!("{BASE}/namespaces/{ns}/trafficmetrics/{name}"),
            );
            assert_metrics(item, exp, &format!("{path} {name}"));
        }
    }
}
