//! The virtual, mesh-neutral series Grafana queries, and how a selector over them
//! becomes SMI questions (model [`Target`]s) for the backends.
//!
//! | series | value |
//! | --- | --- |
//! | `smi_success_count` | successful responses in the window |
//! | `smi_failure_count` | failed responses in the window |
//! | `smi_requests_per_second` | responses per second over the window |
//! | `smi_success_rate` | share of responses that succeeded, 0–1 (absent without responses) |
//! | `smi_response_latency_ms{quantile="0.5"\|"0.9"\|"0.99"}` | latency percentile in ms (absent without responses) |
//!
//! Labels: `namespace`, `kind` (`deployment`, `pod`, ...), `name`, `window`; edge
//! series add `direction` (`from`/`to`), `peer_kind`, `peer_namespace`, `peer_name`.
//! A selector that constrains `direction` or a `peer_*` label asks for edges and
//! must pin `kind`, `name` and (for namespaced kinds) `namespace` with `=`.
//! The window is the `window` label's value (`window="5m"`), else the server's default.

use std::time::Duration;

use adapters::duration;
use adapters::model::{Direction, Kind, ResourceRef, StatsResult, Target, TrafficStats};
use apiservice::request::WindowLimits;
use promql_parser::label::{MatchOp, Matcher};

use super::expr::Series;

/// Every virtual metric: name, help.
pub const METRICS: [(&str, &str); 5] = [
    (
        "smi_success_count",
        "Successful responses in the window (SMI success_count).",
    ),
    (
        "smi_failure_count",
        "Failed responses in the window (SMI failure_count).",
    ),
    (
        "smi_requests_per_second",
        "Responses per second over the window.",
    ),
    (
        "smi_success_rate",
        "Share of responses that succeeded, 0 to 1.",
    ),
    (
        "smi_response_latency_ms",
        "Response latency percentile in milliseconds (label quantile).",
    ),
];

/// Every label a series can carry.
pub const LABELS: [&str; 10] = [
    "__name__",
    "direction",
    "kind",
    "name",
    "namespace",
    "peer_kind",
    "peer_name",
    "peer_namespace",
    "quantile",
    "window",
];

const EDGE_LABELS: [&str; 4] = ["direction", "peer_kind", "peer_namespace", "peer_name"];

/// The lower-case kind name used in the `kind` label.
pub fn kind_label(k: Kind) -> &'static str {
    let p = k.plural();
    &p[..p.len() - 1]
}

/// What a selector needs from the backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The SMI questions.
    pub targets: Vec<Target>,
    /// Their window.
    pub window: Duration,
}

fn value_of<'a>(matchers: &'a [Matcher], label: &str) -> Option<&'a str> {
    matchers
        .iter()
        .find(|m| m.name == label && matches!(m.op, MatchOp::Equal))
        .map(|m| m.value.as_str())
}

fn accepts(matchers: &[Matcher], label: &str, value: &str) -> bool {
    matchers
        .iter()
        .filter(|m| m.name == label)
        .all(|m| m.is_match(value))
}

/// Plans the questions a selector needs.
pub fn need(matchers: &[Matcher], kinds: &[Kind], limits: &WindowLimits) -> Result<Need, String> {
    let window = match value_of(matchers, "window") {
        Some(w) => {
            let d = duration::parse(w).map_err(|e| format!("window label {w:?}: {e}"))?;
            if d < limits.min || d > limits.max {
                return Err(format!(
                    "window label {w:?} must lie between {} and {}",
                    duration::format(limits.min),
                    duration::format(limits.max)
                ));
            }
            d
        }
        None => limits.default,
    };
    if !METRICS
        .iter()
        .any(|(m, _)| accepts(matchers, "__name__", m))
    {
        return Ok(Need {
            targets: Vec::new(),
            window,
        });
    }
    let kinds: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|k| accepts(matchers, "kind", kind_label(*k)))
        .collect();
    let namespace = value_of(matchers, "namespace");
    let name = value_of(matchers, "name");
    let edges = matchers
        .iter()
        .any(|m| EDGE_LABELS.contains(&m.name.as_str()) && !m.is_match(""));
    let mut targets = Vec::new();
    if edges {
        let (Some(name), [kind]) = (name, kinds.as_slice()) else {
            return Err("edge series (direction/peer_* matchers) need kind=\"...\" and name=\"...\" matchers".into());
        };
        let root = if *kind == Kind::Namespace {
            ResourceRef::namespace(name)
        } else {
            let ns = namespace
                .ok_or("edge series of namespaced kinds need a namespace=\"...\" matcher")?;
            ResourceRef::namespaced(*kind, ns, name)
        };
        targets.push(Target::Edges(root));
    } else {
        for kind in kinds {
            targets.push(match (kind, namespace, name) {
                (Kind::Namespace, _, Some(n)) => Target::One(ResourceRef::namespace(n)),
                (Kind::Namespace, Some(ns), None) => Target::One(ResourceRef::namespace(ns)),
                (Kind::Namespace, None, None) => Target::List {
                    kind,
                    namespace: None,
                },
                (k, Some(ns), Some(n)) => Target::One(ResourceRef::namespaced(k, ns, n)),
                (k, ns, _) => Target::List {
                    kind: k,
                    namespace: ns.map(str::to_string),
                },
            });
        }
    }
    for t in &targets {
        if let Target::One(r) | Target::Edges(r) = t {
            validate(r)?;
        }
        if let Target::List {
            namespace: Some(ns),
            ..
        } = t
        {
            apiservice::request::namespace_name(ns).map_err(|e| e.message)?;
        }
    }
    Ok(Need { targets, window })
}

fn validate(r: &ResourceRef) -> Result<(), String> {
    if let Some(ns) = &r.namespace {
        apiservice::request::namespace_name(ns).map_err(|e| e.message)?;
        apiservice::request::object_name(&r.name).map_err(|e| e.message)?;
    } else {
        apiservice::request::namespace_name(&r.name).map_err(|e| e.message)?;
    }
    Ok(())
}

fn base_labels(r: &ResourceRef, window: Duration) -> Series {
    let mut s = Series::new();
    s.insert("namespace".into(), r.home_namespace().to_string());
    s.insert("kind".into(), kind_label(r.kind).to_string());
    s.insert("name".into(), r.name.clone());
    s.insert("window".into(), duration::format(window));
    s
}

fn push_metrics(
    out: &mut Vec<(Series, f64)>,
    labels: Series,
    stats: &TrafficStats,
    window: Duration,
) {
    let total = stats.success + stats.failure;
    let with = |name: &str| {
        let mut s = labels.clone();
        s.insert("__name__".into(), name.to_string());
        s
    };
    out.push((with("smi_success_count"), stats.success));
    out.push((with("smi_failure_count"), stats.failure));
    out.push((
        with("smi_requests_per_second"),
        total / window.as_secs_f64(),
    ));
    if total > 0.0 {
        out.push((with("smi_success_rate"), stats.success / total));
    }
    if let Some(l) = stats.latency {
        for (q, v) in [("0.5", l.p50), ("0.9", l.p90), ("0.99", l.p99)] {
            let mut s = with("smi_response_latency_ms");
            s.insert("quantile".into(), q.into());
            out.push((s, v));
        }
    }
}

/// All series of the answers, filtered by the selector's matchers.
pub fn samples(
    results: &[StatsResult],
    window: Duration,
    matchers: &[Matcher],
) -> Vec<(Series, f64)> {
    let mut out = Vec::new();
    for r in results {
        match r {
            StatsResult::Resources(items) => {
                for i in items {
                    push_metrics(&mut out, base_labels(&i.resource, window), &i.stats, window);
                }
            }
            StatsResult::Edges(items) => {
                for e in items {
                    let mut labels = base_labels(&e.resource, window);
                    labels.insert(
                        "direction".into(),
                        match e.direction {
                            Direction::From => "from",
                            Direction::To => "to",
                        }
                        .into(),
                    );
                    labels.insert("peer_kind".into(), kind_label(e.peer.kind).into());
                    labels.insert("peer_namespace".into(), e.peer.home_namespace().into());
                    labels.insert("peer_name".into(), e.peer.name.clone());
                    push_metrics(&mut out, labels, &e.stats, window);
                }
            }
        }
    }
    // the window matcher chose the window (see [`need`]); it does not filter
    out.retain(|(s, _)| {
        matchers
            .iter()
            .filter(|m| m.name != "window")
            .all(|m| m.is_match(s.get(&m.name).map(String::as_str).unwrap_or("")))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters::model::{EdgeStats, Latency, ResourceStats};

    fn m(text: &str) -> Vec<Matcher> {
        match super::super::expr::compile(text).unwrap() {
            super::super::expr::Query::Select(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn need_of(text: &str) -> Result<Need, String> {
        need(&m(text), &Kind::ALL, &WindowLimits::default())
    }

    #[test]
    fn selectors_become_targets() {
        let n = need_of(r#"smi_requests_per_second{kind="deployment", namespace="shop"}"#).unwrap();
        assert_eq!(
            n.targets,
            [Target::List {
                kind: Kind::Deployment,
                namespace: Some("shop".into())
            }]
        );
        assert_eq!(n.window, Duration::from_secs(30));
        let n = need_of(
            r#"smi_success_rate{kind="deployment", namespace="shop", name="web", window="5m"}"#,
        )
        .unwrap();
        assert_eq!(
            n.targets,
            [Target::One(ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "web"
            ))]
        );
        assert_eq!(n.window, Duration::from_secs(300));
        let n = need_of(r#"smi_requests_per_second{kind=~"deployment|statefulset"}"#).unwrap();
        assert_eq!(n.targets.len(), 2);
        let n = need_of(r#"smi_requests_per_second{kind="namespace"}"#).unwrap();
        assert_eq!(
            n.targets,
            [Target::List {
                kind: Kind::Namespace,
                namespace: None
            }]
        );
        let n = need_of(r#"smi_requests_per_second{kind="deployment", namespace="shop", name="api", direction="from"}"#).unwrap();
        assert_eq!(
            n.targets,
            [Target::Edges(ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "api"
            ))]
        );
        assert!(need_of(r#"other_metric{kind="deployment"}"#)
            .unwrap()
            .targets
            .is_empty());
    }

    #[test]
    fn bad_selectors_are_explained() {
        assert!(need_of(r#"smi_requests_per_second{direction="from"}"#)
            .unwrap_err()
            .contains("need kind"));
        assert!(
            need_of(r#"smi_requests_per_second{kind="deployment", name="x", direction="to"}"#)
                .unwrap_err()
                .contains("namespace")
        );
        assert!(need_of(r#"smi_requests_per_second{window="2h"}"#).is_err());
        assert!(need_of(r#"smi_requests_per_second{kind="deployment", namespace="Bad"}"#).is_err());
    }

    #[test]
    fn answers_become_filtered_series() {
        let web = ResourceRef::namespaced(Kind::Deployment, "shop", "web");
        let stats = TrafficStats {
            success: 90.0,
            failure: 10.0,
            latency: Some(Latency {
                p50: 1.0,
                p90: 2.0,
                p99: 3.0,
            }),
        };
        let results = [
            StatsResult::Resources(vec![ResourceStats {
                resource: web.clone(),
                stats,
            }]),
            StatsResult::Edges(vec![EdgeStats {
                resource: web,
                direction: Direction::To,
                peer: ResourceRef::namespaced(Kind::Deployment, "shop", "api"),
                stats,
            }]),
        ];
        let w = Duration::from_secs(10);
        let rps = samples(&results[..1], w, &m("smi_requests_per_second"));
        assert_eq!(rps.len(), 1);
        assert_eq!(rps[0].1, 10.0);
        assert_eq!(rps[0].0["kind"], "deployment");
        assert_eq!(rps[0].0["window"], "10s");
        let p99 = samples(
            &results[..1],
            w,
            &m(r#"smi_response_latency_ms{quantile="0.99"}"#),
        );
        assert_eq!(p99[0].1, 3.0);
        let rate = samples(&results[..1], w, &m("smi_success_rate"));
        assert_eq!(rate[0].1, 0.9);
        let edges = samples(
            &results[1..],
            w,
            &m(r#"smi_success_count{direction="to", peer_name="api"}"#),
        );
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0].0["peer_namespace"], "shop");
        let idle = samples(
            &[StatsResult::Resources(vec![ResourceStats {
                resource: ResourceRef::namespace("shop"),
                stats: TrafficStats::default(),
            }])],
            w,
            &m(r#"{__name__=~"smi_.*"}"#),
        );
        let names: Vec<&str> = idle.iter().map(|(s, _)| s["__name__"].as_str()).collect();
        assert_eq!(
            names,
            [
                "smi_success_count",
                "smi_failure_count",
                "smi_requests_per_second"
            ]
        );
    }
}
