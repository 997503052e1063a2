//! Checks shared by every mesh: each list, object and edge the server returns is
//! compared with the simulator's independently computed ground truth for that mesh's
//! view of the traffic, and kinds the mesh cannot report must answer 404.

use e2e::{assert_metrics, env_for, kind, kind_string, metric, object_path, timestamp, BASE};
use meshsim::{Direction, Expected, Kind, Res, View};
use serde_json::Value;

/// Every kind the API knows.
pub const KINDS: [Kind; 7] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
    Kind::Service,
];
/// The windows compared.
pub const WINDOWS: [(&str, i64); 3] = [("30s", 30), ("1m", 60), ("5m", 300)];

/// The `(kind, namespace, name)` of an item's resource.
pub fn res_of(obj: &Value) -> (String, Option<String>, String) {
    let r = &obj["resource"];
    (
        r["kind"].as_str().unwrap().to_string(),
        r["namespace"].as_str().map(String::from),
        r["name"].as_str().unwrap().to_string(),
    )
}

/// The `(kind, namespace, name)` a truth resource is served as.
pub fn expect_res(r: &Res) -> (String, Option<String>, String) {
    (
        kind_string(r.kind).to_string(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

/// Compares a served list with the truth list (same items, same order, same numbers).
pub fn assert_list(body: &Value, truth: &[(Res, Expected)], ctx: &str) {
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

fn all_namespaces(view: View, end: i64, w: i64) -> Vec<String> {
    let truth = env_for(view).dataset.truth(view);
    let mut v: Vec<String> = truth
        .list(Kind::Namespace, None, end, w)
        .into_iter()
        .map(|(r, _)| r.name)
        .collect();
    v.push("legacy".into()); // unmeshed: must answer an empty list
    v
}

/// Every supported kind, cluster-wide and per namespace, in every window, equals the truth.
pub async fn lists_match_ground_truth(view: View) {
    let env = env_for(view);
    let truth = env.dataset.truth(view);
    for &k in view.kinds() {
        for (t, w) in WINDOWS {
            let path = format!("{BASE}/{}?t={t}", kind(k).plural());
            let (code, _, body) = env.server.get(&path).await;
            assert_eq!(code, 200, "{view} {path}: {body}");
            let items = body["items"].as_array().unwrap();
            assert!(
                !items.is_empty(),
                "{view} {path}: the demo has traffic for every kind"
            );
            let end = timestamp(&items[0]);
            assert!(items.iter().all(|i| timestamp(i) == end));
            assert_eq!(
                items[0]["window"],
                adapters::duration::format(std::time::Duration::from_secs(w as u64))
            );
            assert_list(
                &body,
                &truth.list(k, None, end, w),
                &format!("{view} {path}"),
            );

            if k == Kind::Namespace {
                continue;
            }
            for ns in all_namespaces(view, end, w) {
                let path = format!("{BASE}/namespaces/{ns}/{}?t={t}", kind(k).plural());
                let (code, _, body) = env.server.get(&path).await;
                assert_eq!(code, 200, "{view} {path}: {body}");
                let Some(first) = body["items"].as_array().unwrap().first() else {
                    assert_eq!(body["items"], serde_json::json!([]), "{view} {path}");
                    assert!(
                        truth.list(k, Some(&ns), end, w).is_empty(),
                        "{view} {path}: truth has items"
                    );
                    continue;
                };
                let end = timestamp(first);
                assert_list(
                    &body,
                    &truth.list(k, Some(&ns), end, w),
                    &format!("{view} {path}"),
                );
                assert_eq!(body["resource"]["namespace"], ns.as_str());
            }
        }
    }
}

/// Compares served edges with truth edges (as sets; order is checked separately).
pub fn assert_edges(body: &Value, root: &Res, truth: &[meshsim::ExpectedEdge], ctx: &str) {
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

/// What an objects-and-edges run exercised.
#[derive(Debug, Default)]
pub struct Coverage {
    /// Edges with failures.
    pub failing_edges: usize,
    /// Edges to or from another namespace (not counting namespace edges).
    pub cross_namespace: usize,
    /// Edges of a resource with itself.
    pub self_edges: usize,
    /// Objects with no traffic in the window.
    pub idle: usize,
    /// Edges compared.
    pub edges: usize,
}

/// Every listed object and its edges, in every window, equal the truth; edges of kinds the
/// mesh cannot name peers for answer 404.
pub async fn objects_and_edges_match_ground_truth(view: View) -> Coverage {
    let env = env_for(view);
    let truth = env.dataset.truth(view);
    let mut cov = Coverage::default();
    for &k in view.kinds() {
        for (t, w) in WINDOWS {
            let (_, _, list) = env
                .server
                .get(&format!("{BASE}/{}?t={t}", kind(k).plural()))
                .await;
            let end = timestamp(&list["items"][0]);
            for (r, _) in truth.list(k, None, end, w) {
                let path = format!("{}?t={t}", object_path(&r));
                let (code, _, obj) = env.server.get(&path).await;
                assert_eq!(code, 200, "{view} {path}: {obj}");
                assert_eq!(obj["kind"], "TrafficMetrics", "{path}");
                let at = timestamp(&obj);
                let exp = truth.resource(&r, at, w);
                assert_metrics(&obj, &exp, &format!("{view} {path}"));
                if exp.success + exp.failure == 0 {
                    cov.idle += 1;
                    assert!(
                        metric(&obj, "p50_response_latency").is_none(),
                        "{view} {path}: idle has no latency"
                    );
                }

                let path = format!("{}/edges?t={t}", object_path(&r));
                let (code, _, edges) = env.server.get(&path).await;
                if !view.edge_kinds().contains(&k) {
                    assert_eq!(code, 404, "{view} {path}: {edges}");
                    assert_eq!(edges["reason"], "NotFound", "{view} {path}");
                    assert!(
                        edges["message"].as_str().unwrap().contains("edges"),
                        "{view} {path}: {edges}"
                    );
                    continue;
                }
                assert_eq!(code, 200, "{view} {path}: {edges}");
                let at = edges["items"]
                    .as_array()
                    .unwrap()
                    .first()
                    .map(timestamp)
                    .unwrap_or(at);
                let exp_edges = truth.edges(&r, at, w);
                assert_edges(&edges, &r, &exp_edges, &format!("{view} {path}"));
                for e in &exp_edges {
                    cov.edges += 1;
                    cov.failing_edges += usize::from(e.expected.failure > 0);
                    cov.cross_namespace +=
                        usize::from(e.peer.namespace != r.namespace && k != Kind::Namespace);
                    cov.self_edges += usize::from(e.peer == r);
                }
            }
        }
    }
    cov
}

/// Kinds the mesh cannot report answer a 404 `Status` that says why, listed or named.
pub async fn unsupported_kinds_answer_404(view: View) {
    let env = env_for(view);
    for k in KINDS.into_iter().filter(|k| !view.kinds().contains(k)) {
        let paths = [
            format!("{BASE}/{}", kind(k).plural()),
            format!("{BASE}/namespaces/shop/{}", kind(k).plural()),
            format!("{BASE}/namespaces/shop/{}/api", kind(k).plural()),
        ];
        for path in paths {
            let (code, _, body) = env.server.get(&path).await;
            assert_eq!(code, 404, "{view} {path}: {body}");
            assert_eq!(body["kind"], "Status", "{view} {path}");
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains(view.mesh().name()) && message.contains(kind(k).plural()),
                "{view} {path}: {message}"
            );
        }
    }
}

/// An object the data does not know has zeros and no latency.
pub async fn unknown_object_is_zero(view: View) {
    let kind = view.kinds().last().copied().unwrap_or(Kind::Namespace);
    let path = format!(
        "{BASE}/namespaces/shop/{}/does-not-exist",
        e2e::kind(kind).plural()
    );
    let (code, _, obj) = env_for(view).server.get(&path).await;
    assert_eq!(code, 200, "{view} {path}: {obj}");
    assert_eq!(metric(&obj, "success_count"), Some("0"));
    assert_eq!(metric(&obj, "failure_count"), Some("0"));
    assert_eq!(metric(&obj, "p99_response_latency"), None);
}
