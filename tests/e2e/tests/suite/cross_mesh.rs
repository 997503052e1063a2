//! The same traffic seen through every mesh: servers asked about the same object in the
//! same evaluation interval must agree wherever the meshes' data can tell the same thing.
//!
//! * Totals (success + failure): equal between meshes measuring on the same side; edges
//!   between meshed pods are the same requests under every mesh.
//! * Success and failure: equal too when both meshes see gRPC statuses (Linkerd, Istio) or
//!   neither does (the Envoy meshes, Hubble).
//! * Latency: equal when the meshes' buckets, observation side and timing rules agree, as
//!   the simulator's views say (e.g. Istio, Consul and Kuma, all Envoy buckets, server side).
//! * Only where both names stand for the same objects (OSM reports `store.v1` and `store-v1`
//!   as one `store-v1`).

use std::collections::BTreeMap;

use e2e::{env_for, metric, timestamp, VIEWS};
use meshsim::{Direction, Expected, Kind, Res, View};
use serde_json::Value;

/// Asks every view's server for `path` until all answers share one evaluation time.
async fn same_instant(views: &[View], path: &str) -> (i64, Vec<(View, Value)>) {
    for _ in 0..5 {
        let mut answers = Vec::new();
        for &v in views {
            let (code, _, body) = env_for(v).server.get(path).await;
            assert_eq!(code, 200, "{v} {path}: {body}");
            answers.push((v, body));
        }
        let times: Vec<i64> = answers
            .iter()
            .filter_map(|(_, b)| match b["kind"].as_str() {
                Some("TrafficMetrics") => Some(timestamp(b)),
                _ => b["items"].as_array().and_then(|i| i.first()).map(timestamp),
            })
            .collect();
        if times.windows(2).all(|w| w[0] == w[1]) {
            // no item anywhere (e.g. a StatefulSet without StatefulSet peers): any time will do
            let now = chrono::Utc::now().timestamp() / 10 * 10;
            return (times.first().copied().unwrap_or(now), answers);
        }
    }
    panic!("{path}: the servers never answered in one evaluation interval");
}

/// success, failure and the three latencies of an object, as served.
fn numbers(obj: &Value) -> (f64, f64, Vec<Option<String>>) {
    let count = |m| metric(obj, m).unwrap().parse::<f64>().unwrap();
    let latency = [
        "p50_response_latency",
        "p90_response_latency",
        "p99_response_latency",
    ]
    .iter()
    .map(|m| metric(obj, m).map(str::to_string))
    .collect();
    (count("success_count"), count("failure_count"), latency)
}

/// An edge as served, its truth, and the objects its peer's name stands for.
type ServedEdge<'a> = (&'a Value, Expected, Vec<Res>);

#[derive(Debug, Default)]
struct Compared {
    totals: usize,
    splits: usize,
    latencies: usize,
    /// Latency agreements between meshes with different data formats.
    latencies_across_formats: usize,
    /// Pairs skipped because one mesh's name stands for other objects.
    renamed: usize,
}

impl Compared {
    /// Compares two views' numbers for one object or edge.
    fn pair(
        &mut self,
        ctx: &str,
        same_side: bool,
        a: (View, &Value, &Expected),
        b: (View, &Value, &Expected),
    ) {
        let ((va, oa, ta), (vb, ob, tb)) = (a, b);
        let (sa, fa, la) = numbers(oa);
        let (sb, fb, lb) = numbers(ob);
        if same_side {
            assert_eq!(sa + fa, sb + fb, "{ctx}: totals {va} vs {vb}");
            self.totals += 1;
            if va.grpc_visible() == vb.grpc_visible() {
                assert_eq!((sa, fa), (sb, fb), "{ctx}: split {va} vs {vb}");
                self.splits += 1;
            }
        }
        if ta.latency_ms.is_some() && ta.latency_ms == tb.latency_ms {
            assert_eq!(la, lb, "{ctx}: latency {va} vs {vb}");
            self.latencies += 1;
            if va.mesh() != vb.mesh() {
                self.latencies_across_formats += 1;
            }
        }
    }
}

/// The views able to answer about `kind` (edges: `edges`).
fn able(kind: Kind, edges: bool) -> Vec<View> {
    VIEWS
        .into_iter()
        .filter(|v| if edges { v.edge_kinds() } else { v.kinds() }.contains(&kind))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mesh_gives_the_same_numbers_where_its_data_allows() {
    let objects = [
        Res::namespace("shop"),
        Res::namespace("payments"),
        Res::namespace("batch"),
        Res::new(Kind::Deployment, "shop", "api"),
        Res::new(Kind::Deployment, "shop", "web"),
        Res::new(Kind::Deployment, "payments", "ledger"),
        Res::new(Kind::Deployment, "payments", "gateway"),
        Res::new(Kind::StatefulSet, "shop", "db"),
        Res::new(Kind::Service, "shop", "api"),
        Res::new(Kind::Service, "payments", "ledger"),
    ];
    let mut c = Compared::default();
    for r in &objects {
        let path = format!("{}?t=5m", e2e::object_path(r));
        let views = able(r.kind, false);
        let (at, answers) = same_instant(&views, &path).await;
        let truths: Vec<(Expected, Vec<Res>)> = views
            .iter()
            .map(|&v| {
                let t = env_for(v).dataset.truth(v);
                (t.resource(r, at, 300), t.objects(r))
            })
            .collect();
        for i in 0..answers.len() {
            for j in i + 1..answers.len() {
                let (va, vb) = (answers[i].0, answers[j].0);
                // the same name may stand for other objects (OSM merges store.v1 into store-v1)
                if truths[i].1 != truths[j].1 {
                    c.renamed += 1;
                    continue;
                }
                c.pair(
                    &path,
                    va.resource_side() == vb.resource_side(),
                    (va, &answers[i].1, &truths[i].0),
                    (vb, &answers[j].1, &truths[j].0),
                );
            }
        }

        let path = format!("{}/edges?t=5m", e2e::object_path(r));
        let views = able(r.kind, true);
        let (at, answers) = same_instant(&views, &path).await;
        let edges: Vec<BTreeMap<String, ServedEdge>> = answers
            .iter()
            .map(|(v, body)| {
                let t = env_for(*v).dataset.truth(*v);
                let truth = t.edges(r, at, 300);
                body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        let (dir, peer) = (
                            i["edge"]["direction"].as_str().unwrap(),
                            &i["edge"]["resource"],
                        );
                        let key = format!("{dir} {peer}");
                        let e = truth
                            .iter()
                            .find(|e| {
                                let d = match e.direction {
                                    Direction::To => "to",
                                    Direction::From => "from",
                                };
                                d == dir
                                    && e.peer.name == peer["name"].as_str().unwrap()
                                    && e.peer.namespace.as_deref() == peer["namespace"].as_str()
                            })
                            .unwrap_or_else(|| panic!("{v} {path}: edge {key} not in the truth"));
                        (key, (i, e.expected.clone(), t.objects(&e.peer)))
                    })
                    .collect()
            })
            .collect();
        for i in 0..answers.len() {
            for j in i + 1..answers.len() {
                let (va, vb) = (answers[i].0, answers[j].0);
                for (key, (oa, ta, objects_a)) in &edges[i] {
                    match edges[j].get(key) {
                        Some((_, _, objects_b)) if objects_a != objects_b => c.renamed += 1,
                        Some((ob, tb, _)) => {
                            c.pair(&format!("{path} {key}"), true, (va, oa, ta), (vb, ob, tb))
                        }
                        None => {}
                    }
                }
            }
        }
    }
    assert!(c.totals > 100 && c.splits > 50 && c.latencies > 20, "{c:?}");
    assert!(c.latencies_across_formats > 5, "{c:?}");
    assert!(c.renamed > 0, "the OSM store-v1 merge must be met: {c:?}");
}
