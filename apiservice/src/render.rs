//! Shapes model answers into SMI JSON: `TrafficMetrics` for one object,
//! `TrafficMetricsList` for lists and edges.

use adapters::duration;
use adapters::model::{
    Direction, Kind, ResourceRef, StatsResult, Target, TrafficStats, UnixMillis,
};
use chrono::{DateTime, SecondsFormat};

use crate::quantity::format_milli;
use crate::request::MetricsRequest;
use crate::wire::{
    Edge, ListMeta, Metric, ObjectMeta, ObjectReference, TrafficMetrics, TrafficMetricsList,
};
use crate::GROUP_VERSION;

/// The kind string SMI clients expect in `resource.kind` (the SDK spelling,
/// `Daemonset` and `Statefulset` included).
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "Namespace",
        Kind::Pod => "Pod",
        Kind::Deployment => "Deployment",
        Kind::DaemonSet => "Daemonset",
        Kind::StatefulSet => "Statefulset",
        Kind::Job => "Job",
    }
}

/// Formats a time as RFC3339 with second precision in UTC.
pub fn rfc3339(t: UnixMillis) -> String {
    DateTime::from_timestamp(t.0.div_euclid(1000), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn reference(r: &ResourceRef) -> ObjectReference {
    ObjectReference {
        kind: Some(kind_name(r.kind).into()),
        namespace: r.namespace.clone(),
        name: Some(r.name.clone()),
    }
}

/// The five SMI metrics in order.
pub fn metrics(stats: &TrafficStats) -> Vec<Metric> {
    let latency = |f: fn(&adapters::model::Latency) -> f64| {
        stats.latency.as_ref().map(f).and_then(format_milli)
    };
    let latency_metric = |name: &str, value| Metric {
        name: name.into(),
        unit: Some("ms".into()),
        value,
    };
    let count = |name: &str, v: f64| Metric {
        name: name.into(),
        unit: None,
        value: Some(format_milli(v).unwrap_or_else(|| "0".into())),
    };
    vec![
        latency_metric("p99_response_latency", latency(|l| l.p99)),
        latency_metric("p90_response_latency", latency(|l| l.p90)),
        latency_metric("p50_response_latency", latency(|l| l.p50)),
        count("success_count", stats.success),
        count("failure_count", stats.failure),
    ]
}

struct Ctx<'a> {
    req: &'a MetricsRequest,
    at: UnixMillis,
}

impl Ctx<'_> {
    fn object(
        &self,
        r: &ResourceRef,
        edge: Edge,
        stats: &TrafficStats,
        self_link: String,
    ) -> TrafficMetrics {
        let ts = rfc3339(self.at);
        TrafficMetrics {
            kind: "TrafficMetrics".into(),
            api_version: GROUP_VERSION.into(),
            metadata: ObjectMeta {
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                self_link,
                creation_timestamp: ts.clone(),
            },
            timestamp: ts,
            window: duration::format(self.req.window),
            resource: reference(r),
            edge,
            metrics: metrics(stats),
        }
    }

    fn object_link(r: &ResourceRef) -> String {
        match &r.namespace {
            Some(ns) => format!(
                "{}/namespaces/{ns}/{}/{}",
                crate::BASE_PATH,
                r.kind.plural(),
                r.name
            ),
            None => format!("{}/{}/{}", crate::BASE_PATH, r.kind.plural(), r.name),
        }
    }
}

/// The answer to a metrics request: a `TrafficMetrics` object or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// One object (`GET` of a named object or a namespace).
    Object(Box<TrafficMetrics>),
    /// A list (kind lists and edges).
    List(TrafficMetricsList),
}

impl Rendered {
    /// Compact JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Rendered::Object(o) => serde_json::to_vec(o),
            Rendered::List(l) => serde_json::to_vec(l),
        }
        .unwrap_or_default()
    }
}

/// Renders `result` for `req`, evaluated at `at`.
pub fn render(req: &MetricsRequest, at: UnixMillis, result: &StatsResult) -> Rendered {
    let ctx = Ctx { req, at };
    let resource_edge = || Edge {
        direction: "from".into(),
        resource: None,
    };
    match (&req.target, result) {
        (Target::One(_), StatsResult::Resources(items)) if items.len() == 1 => {
            let item = &items[0];
            let link = Ctx::object_link(&item.resource);
            Rendered::Object(Box::new(ctx.object(
                &item.resource,
                resource_edge(),
                &item.stats,
                link,
            )))
        }
        (target, StatsResult::Resources(items)) => {
            let (kind, namespace) = match target {
                Target::List { kind, namespace } => (*kind, namespace.clone()),
                Target::One(r) | Target::Edges(r) => (r.kind, r.namespace.clone()),
            };
            Rendered::List(TrafficMetricsList {
                kind: "TrafficMetricsList".into(),
                api_version: GROUP_VERSION.into(),
                metadata: ListMeta {
                    self_link: req.path.clone(),
                },
                resource: ObjectReference {
                    kind: Some(kind_name(kind).into()),
                    namespace,
                    name: None,
                },
                items: items
                    .iter()
                    .map(|i| {
                        ctx.object(
                            &i.resource,
                            resource_edge(),
                            &i.stats,
                            Ctx::object_link(&i.resource),
                        )
                    })
                    .collect(),
            })
        }
        (target, StatsResult::Edges(edges)) => {
            let root = match target {
                Target::Edges(r) | Target::One(r) => r.clone(),
                Target::List { kind, namespace } => ResourceRef {
                    kind: *kind,
                    namespace: namespace.clone(),
                    name: String::new(),
                },
            };
            Rendered::List(TrafficMetricsList {
                kind: "TrafficMetricsList".into(),
                api_version: GROUP_VERSION.into(),
                metadata: ListMeta {
                    self_link: req.path.clone(),
                },
                resource: reference(&root),
                items: edges
                    .iter()
                    .map(|e| {
                        let edge = Edge {
                            direction: match e.direction {
                                Direction::To => "to",
                                Direction::From => "from",
                            }
                            .into(),
                            resource: Some(reference(&e.peer)),
                        };
                        ctx.object(&e.resource, edge, &e.stats, req.path.clone())
                    })
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters::model::{EdgeStats, Latency, ResourceStats};
    use std::time::Duration;

    const AT: UnixMillis = UnixMillis(1_704_067_200_000); // 2024-01-01T00:00:00Z

    fn req(target: Target, path: &str) -> MetricsRequest {
        MetricsRequest {
            target,
            window: Duration::from_secs(30),
            path: path.into(),
        }
    }

    #[test]
    fn one_object_matches_the_smi_wire_format_byte_for_byte() {
        let web = ResourceRef::namespaced(Kind::Deployment, "shop", "web");
        let path = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web";
        let stats = TrafficStats {
            success: 1000.0,
            failure: 0.0,
            latency: Some(Latency {
                p50: 2.5,
                p90: 9.0,
                p99: 12.5,
            }),
        };
        let out = render(
            &req(Target::One(web.clone()), path),
            AT,
            &StatsResult::Resources(vec![ResourceStats {
                resource: web,
                stats,
            }]),
        );
        let json = String::from_utf8(out.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"TrafficMetrics","apiVersion":"metrics.smi-spec.io/v1alpha1","metadata":{"name":"web","namespace":"shop","selfLink":"/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web","creationTimestamp":"2024-01-01T00:00:00Z"},"timestamp":"2024-01-01T00:00:00Z","window":"30s","resource":{"kind":"Deployment","namespace":"shop","name":"web"},"edge":{"direction":"from","resource":null},"metrics":[{"name":"p99_response_latency","unit":"ms","value":"12500m"},{"name":"p90_response_latency","unit":"ms","value":"9"},{"name":"p50_response_latency","unit":"ms","value":"2500m"},{"name":"success_count","value":"1k"},{"name":"failure_count","value":"0"}]}"#
        );
    }

    #[test]
    fn idle_object_has_zero_counts_and_no_latency_values() {
        let m = metrics(&TrafficStats::default());
        assert_eq!(m.len(), 5);
        assert!(m[..3]
            .iter()
            .all(|m| m.value.is_none() && m.unit.as_deref() == Some("ms")));
        assert_eq!(m[3].value.as_deref(), Some("0"));
        assert_eq!(m[4].value.as_deref(), Some("0"));
    }

    #[test]
    fn empty_list_has_items_array_and_cluster_scoped_refs_have_no_namespace() {
        let path = "/apis/metrics.smi-spec.io/v1alpha1/namespaces";
        let t = Target::List {
            kind: Kind::Namespace,
            namespace: None,
        };
        let empty = render(&req(t.clone(), path), AT, &StatsResult::Resources(vec![]));
        let v: serde_json::Value = serde_json::from_slice(&empty.to_json()).unwrap();
        assert_eq!(v["items"], serde_json::json!([]));
        assert_eq!(v["resource"], serde_json::json!({"kind": "Namespace"}));
        let one = render(
            &req(t, path),
            AT,
            &StatsResult::Resources(vec![ResourceStats {
                resource: ResourceRef::namespace("shop"),
                stats: TrafficStats::default(),
            }]),
        );
        let v: serde_json::Value = serde_json::from_slice(&one.to_json()).unwrap();
        assert_eq!(
            v["items"][0]["resource"],
            serde_json::json!({"kind": "Namespace", "name": "shop"})
        );
        assert_eq!(
            v["items"][0]["metadata"]["selfLink"],
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop"
        );
        assert!(v["items"][0]["metadata"].get("namespace").is_none());
    }

    #[test]
    fn edges_carry_direction_peer_and_the_edges_self_link() {
        let db = ResourceRef::namespaced(Kind::StatefulSet, "shop", "db");
        let path = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/statefulsets/db/edges";
        let edges = vec![EdgeStats {
            resource: db.clone(),
            direction: Direction::From,
            peer: ResourceRef::namespaced(Kind::StatefulSet, "payments", "ledger"),
            stats: TrafficStats {
                success: 28.58,
                ..Default::default()
            },
        }];
        let out = render(
            &req(Target::Edges(db), path),
            AT,
            &StatsResult::Edges(edges),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.to_json()).unwrap();
        assert_eq!(v["kind"], "TrafficMetricsList");
        assert_eq!(
            v["resource"],
            serde_json::json!({"kind": "Statefulset", "namespace": "shop", "name": "db"})
        );
        let item = &v["items"][0];
        assert_eq!(item["metadata"]["name"], "db");
        assert_eq!(item["metadata"]["selfLink"], path);
        assert_eq!(
            item["edge"],
            serde_json::json!({"direction": "from", "resource": {"kind": "Statefulset", "namespace": "payments", "name": "ledger"}})
        );
        assert_eq!(item["metrics"][3]["value"], "28580m");
    }
}
