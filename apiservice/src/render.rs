//! Shapes model answers into SMI JSON: `TrafficMetrics` for one object,
//! `TrafficMetricsList` for lists and edges.

use adapters::duration;
use adapters::model::{
    Direction, EdgeStats, Kind, ResourceRef, ResourceStats, StatsResult, Target, TrafficStats,
    UnixMillis,
};
use chrono::{DateTime, SecondsFormat};

use crate::quantity::format_milli;
use crate::request::{prefixed_name, MetricsRequest, Naming, TRAFFICMETRICS};
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
        Kind::Service => "Service",
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
                name: item_name(self.req.naming, r),
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

    fn object_link(&self, r: &ResourceRef) -> String {
        match (&r.namespace, self.req.naming) {
            (Some(ns), Naming::Prefixed) => format!(
                "{}/namespaces/{ns}/{TRAFFICMETRICS}/{}",
                crate::BASE_PATH,
                prefixed_name(r.kind, &r.name)
            ),
            (Some(ns), Naming::Smi) => format!(
                "{}/namespaces/{ns}/{}/{}",
                crate::BASE_PATH,
                r.kind.plural(),
                r.name
            ),
            (None, _) => format!("{}/{}/{}", crate::BASE_PATH, r.kind.plural(), r.name),
        }
    }

    fn list(&self, resource: ObjectReference, items: Vec<TrafficMetrics>) -> TrafficMetricsList {
        TrafficMetricsList {
            kind: "TrafficMetricsList".into(),
            api_version: GROUP_VERSION.into(),
            metadata: ListMeta {
                self_link: self.req.path.clone(),
            },
            resource,
            items,
        }
    }
}

/// The name an item carries in `metadata.name` under `naming`.
pub fn item_name(naming: Naming, r: &ResourceRef) -> String {
    match (naming, &r.namespace) {
        (Naming::Prefixed, Some(_)) => prefixed_name(r.kind, &r.name),
        _ => r.name.clone(),
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

    /// The objects, in order.
    pub fn items(&self) -> &[TrafficMetrics] {
        match self {
            Rendered::Object(o) => std::slice::from_ref(o.as_ref()),
            Rendered::List(l) => &l.items,
        }
    }
}

fn resource_edge() -> Edge {
    Edge {
        direction: "from".into(),
        resource: None,
    }
}

/// Renders `results` (one per target of `req`, in order) evaluated at `at`.
pub fn render(req: &MetricsRequest, at: UnixMillis, results: &[StatsResult]) -> Rendered {
    let ctx = Ctx { req, at };
    let mut resources: Vec<&ResourceStats> = Vec::new();
    let mut edges: Vec<&EdgeStats> = Vec::new();
    for r in results {
        match r {
            StatsResult::Resources(items) => resources.extend(items),
            StatsResult::Edges(items) => edges.extend(items),
        }
    }
    if req.single {
        if let Some(item) = resources.first() {
            let link = ctx.object_link(&item.resource);
            return Rendered::Object(Box::new(ctx.object(
                &item.resource,
                resource_edge(),
                &item.stats,
                link,
            )));
        }
    }
    if let Target::Edges(root) = req.target() {
        let items = edges
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
            .collect();
        return Rendered::List(ctx.list(reference(root), items));
    }
    if req.naming == Naming::Prefixed {
        resources.sort_by_cached_key(|r| {
            (
                r.resource.namespace.clone(),
                item_name(req.naming, &r.resource),
            )
        });
    }
    let (kind, namespace) = match req.target() {
        Target::List { kind, namespace } => (*kind, namespace.clone()),
        Target::One(r) | Target::Edges(r) => (r.kind, r.namespace.clone()),
    };
    let kind = match req.naming {
        Naming::Smi => kind_name(kind),
        Naming::Prefixed => "TrafficMetrics",
    };
    let items = resources
        .iter()
        .map(|i| {
            ctx.object(
                &i.resource,
                resource_edge(),
                &i.stats,
                ctx.object_link(&i.resource),
            )
        })
        .collect();
    Rendered::List(ctx.list(
        ObjectReference {
            kind: Some(kind.into()),
            namespace,
            name: None,
        },
        items,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters::model::Latency;
    use std::time::Duration;

    const AT: UnixMillis = UnixMillis(1_704_067_200_000); // 2024-01-01T00:00:00Z

    fn req(target: Target, path: &str) -> MetricsRequest {
        MetricsRequest {
            single: matches!(target, Target::One(_)),
            targets: vec![target],
            window: Duration::from_secs(30),
            path: path.into(),
            naming: Naming::Smi,
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
            &[StatsResult::Resources(vec![ResourceStats {
                resource: web,
                stats,
            }])],
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
        let empty = render(&req(t.clone(), path), AT, &[StatsResult::Resources(vec![])]);
        let v: serde_json::Value = serde_json::from_slice(&empty.to_json()).unwrap();
        assert_eq!(v["items"], serde_json::json!([]));
        assert_eq!(v["resource"], serde_json::json!({"kind": "Namespace"}));
        let one = render(
            &req(t, path),
            AT,
            &[StatsResult::Resources(vec![ResourceStats {
                resource: ResourceRef::namespace("shop"),
                stats: TrafficStats::default(),
            }])],
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
    fn trafficmetrics_list_merges_kinds_with_prefixed_names() {
        let path = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/trafficmetrics";
        let mut r = req(
            Target::List {
                kind: Kind::Deployment,
                namespace: Some("shop".into()),
            },
            path,
        );
        r.naming = Naming::Prefixed;
        let item = |k, n: &str| ResourceStats {
            resource: ResourceRef::namespaced(k, "shop", n),
            stats: TrafficStats::default(),
        };
        let out = render(
            &r,
            AT,
            &[
                StatsResult::Resources(vec![item(Kind::Deployment, "web")]),
                StatsResult::Resources(vec![item(Kind::StatefulSet, "db")]),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.to_json()).unwrap();
        assert_eq!(
            v["resource"],
            serde_json::json!({"kind": "TrafficMetrics", "namespace": "shop"})
        );
        assert_eq!(v["items"][0]["metadata"]["name"], "deployment-web");
        assert_eq!(v["items"][1]["metadata"]["name"], "statefulset-db");
        assert_eq!(v["items"][1]["resource"]["kind"], "Statefulset");
        assert_eq!(
            v["items"][1]["metadata"]["selfLink"],
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/trafficmetrics/statefulset-db"
        );
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
            &[StatsResult::Edges(edges)],
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
