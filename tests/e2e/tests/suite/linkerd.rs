//! Linkerd numbers: every kind, list, object and edge the server returns is
//! compared with the simulator's independently computed ground truth.

use e2e::{assert_metrics, env, kind, kind_string, metric, object_path, timestamp, BASE};
use meshsim::{Direction, Expected, Kind, Mesh, Res};
use serde_json::Value;

const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];
const WINDOWS: [(&str, i64); 3] = [("30s", 30), ("1m", 60), ("5m", 300)];

fn res_of(obj: &Value) -> (String, Option<String>, String) {
    let r = &obj["resource"];
    (
        r["kind"].as_str().unwrap().to_string(),
        r["namespace"].as_str().map(String::from),
        r["name"].as_str().unwrap().to_string(),
    )
}

fn expect_res(r: &Res) -> (String, Option<String>, String) {
    (
        kind_string(r.kind).to_string(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

/// Compares a served list with the truth list (same items, same order, same numbers).
fn assert_list(body: &Value, truth: &[(Res, Expected)], ctx: &str) {
    assert_eq!(body["kind"], "TrafficMetricsList", "{ctx}");
    let items = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: items must be an array"));
    let served: Vec<_> = items.iter().map(res_of).collect();
    let expected: Vec<_> = truth.iter().map(|(r, _)| expect_res(r)).collect();
    assert_eq!(served, expected, "{ctx}: items");
    for (item, (r, exp)) in items.iter().zip(truth) {
        assert_eq!(
            item["edge"],
            serde_json::json!({"direction": "from", "resource": null}),
            "{ctx}"
        );
        assert_eq!(item["metadata"]["selfLink"], object_path(r), "{ctx}");
        assert_metrics(item, exp, &format!("{ctx} {}", r.name));
    }
}

fn all_namespaces(end: i64, w: i64) -> Vec<String> {
    let truth = env().dataset.truth(Mesh::Linkerd);
    let mut v: Vec<String> = truth
        .list(Kind::Namespace, None, end, w)
        .into_iter()
        .map(|(r, _)| r.name)
        .collect();
    v.push("legacy".into()); // unmeshed: must answer an empty list
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_match_ground_truth_for_every_kind_and_window() {
    let env = env();
    let truth = env.dataset.truth(Mesh::Linkerd);
    for k in KINDS {
        for (t, w) in WINDOWS {
            let path = format!("{BASE}/{}?t={t}", kind(k).plural());
            let (code, _, body) = env.server.get(&path).await;
            assert_eq!(code, 200, "{path}: {body}");
            let items = body["items"].as_array().unwrap();
            assert!(
                !items.is_empty(),
                "{path}: the demo has traffic for every kind"
            );
            let end = timestamp(&items[0]);
            assert!(items.iter().all(|i| timestamp(i) == end));
            assert_eq!(
                items[0]["window"],
                adapters::duration::format(std::time::Duration::from_secs(w as u64))
            );
            assert_list(&body, &truth.list(k, None, end, w), &path);

            if k == Kind::Namespace {
                continue;
            }
            for ns in all_namespaces(end, w) {
                let path = format!("{BASE}/namespaces/{ns}/{}?t={t}", kind(k).plural());
                let (code, _, body) = env.server.get(&path).await;
                assert_eq!(code, 200, "{path}: {body}");
                let Some(first) = body["items"].as_array().unwrap().first() else {
                    assert_eq!(body["items"], serde_json::json!([]), "{path}");
                    assert!(
                        truth.list(k, Some(&ns), end, w).is_empty(),
                        "{path}: truth has items"
                    );
                    continue;
                };
                let end = timestamp(first);
                assert_list(&body, &truth.list(k, Some(&ns), end, w), &path);
                assert_eq!(body["resource"]["namespace"], ns.as_str());
            }
        }
    }
}

/// Compares served edges with truth edges (as sets; order is checked separately).
fn assert_edges(body: &Value, root: &Res, truth: &[meshsim::ExpectedEdge], ctx: &str) {
    let items = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: items"));
    assert_eq!(body["resource"]["name"], root.name.as_str(), "{ctx}");
    let key = |dir: &str, kind: &str, ns: Option<&str>, name: &str| {
        format!("{dir} {kind} {} {name}", ns.unwrap_or("-"))
    };
    let mut served: Vec<(String, &Value)> = items
        .iter()
        .map(|i| {
            let p = &i["edge"]["resource"];
            (
                key(
                    i["edge"]["direction"].as_str().unwrap(),
                    p["kind"].as_str().unwrap(),
                    p["namespace"].as_str(),
                    p["name"].as_str().unwrap(),
                ),
                i,
            )
        })
        .collect();
    // the server sorts by direction, then peer namespace, then peer name
    let order: Vec<String> = served.iter().map(|(k, _)| k.clone()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "{ctx}: edges must be sorted");
    let mut expected: Vec<(String, &Expected)> = truth
        .iter()
        .map(|e| {
            let dir = match e.direction {
                Direction::To => "to",
                Direction::From => "from",
            };
            (
                key(
                    dir,
                    kind_string(e.peer.kind),
                    e.peer.namespace.as_deref(),
                    &e.peer.name,
                ),
                &e.expected,
            )
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    served.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        served.iter().map(|s| &s.0).collect::<Vec<_>>(),
        expected.iter().map(|e| &e.0).collect::<Vec<_>>(),
        "{ctx}: edge set"
    );
    for ((k, item), (_, exp)) in served.iter().zip(&expected) {
        assert_eq!(item["metadata"]["name"], root.name.as_str(), "{ctx}");
        assert_metrics(item, exp, &format!("{ctx} {k}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_and_edges_match_ground_truth() {
    let env = env();
    let truth = env.dataset.truth(Mesh::Linkerd);
    let (mut failing_edges, mut cross_ns, mut self_edges, mut idle) = (0, 0, 0, 0);
    for k in KINDS {
        for (t, w) in WINDOWS {
            let (_, _, list) = env
                .server
                .get(&format!("{BASE}/{}?t={t}", kind(k).plural()))
                .await;
            let end = timestamp(&list["items"][0]);
            for (r, _) in truth.list(k, None, end, w) {
                let path = format!("{}?t={t}", object_path(&r));
                let (code, _, obj) = env.server.get(&path).await;
                assert_eq!(code, 200, "{path}: {obj}");
                assert_eq!(obj["kind"], "TrafficMetrics", "{path}");
                let at = timestamp(&obj);
                let exp = truth.resource(&r, at, w);
                assert_metrics(&obj, &exp, &path);
                if exp.success + exp.failure == 0 {
                    idle += 1;
                    assert!(
                        metric(&obj, "p50_response_latency").is_none(),
                        "{path}: idle has no latency"
                    );
                }

                let path = format!("{}/edges?t={t}", object_path(&r));
                let (code, _, edges) = env.server.get(&path).await;
                assert_eq!(code, 200, "{path}: {edges}");
                let at = edges["items"]
                    .as_array()
                    .unwrap()
                    .first()
                    .map(timestamp)
                    .unwrap_or(at);
                let exp_edges = truth.edges(&r, at, w);
                assert_edges(&edges, &r, &exp_edges, &path);
                for e in &exp_edges {
                    failing_edges += usize::from(e.expected.failure > 0);
                    cross_ns +=
                        usize::from(e.peer.namespace != r.namespace && k != Kind::Namespace);
                    self_edges += usize::from(e.peer == r);
                }
            }
        }
    }
    // the demo topology must actually exercise the traps
    assert!(failing_edges > 0, "no failing edge was checked");
    assert!(cross_ns > 0, "no cross-namespace edge was checked");
    assert!(self_edges > 0, "no self-edge was checked");
    assert!(idle > 0, "no idle workload was checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_workload_is_zero_without_latency() {
    let (code, _, obj) = env()
        .server
        .get(&format!(
            "{BASE}/namespaces/shop/deployments/does-not-exist"
        ))
        .await;
    assert_eq!(code, 200, "{obj}");
    assert_eq!(metric(&obj, "success_count"), Some("0"));
    assert_eq!(metric(&obj, "failure_count"), Some("0"));
    assert_eq!(metric(&obj, "p99_response_latency"), None);
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
