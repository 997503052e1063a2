//! Linkerd 2.x (linkerd-viz, 2.10+): `response_total` and `response_latency_ms_bucket`.
//!
//! * Resource metrics are server side: the resource's own inbound series
//!   (`direction="inbound"`), which include callers outside the mesh.
//! * Edges are client side: only outbound series carry both ends
//!   (`namespace`/`<kind>` of the caller, `dst_namespace`/`dst_<kind>` of the callee).
//!   `to` edges are the resource's outbound series; `from` edges are the callers'
//!   outbound series whose `dst_*` labels name the resource.
//! * Success follows the proxy's `classification` label (5xx, failing gRPC
//!   statuses and stream errors are failures), which is the SMI rule.
//! * Counters and latency buckets are read by one query per direction (a
//!   [`Family::Combined`](crate::mesh::Family::Combined) selector over both names):
//!   `response_total` carries no `le` and the buckets no `classification`, so the
//!   groups never mix, and Prometheus looks the series up once.
//! * Lists (every object of a namespace, or of the mesh) touch many series: their query is
//!   split in two by `le` ([`split_by_le`]), so Prometheus evaluates the halves in
//!   parallel; single objects and edges select few series and stay one query.

use crate::mesh::{
    check_kind, Mesh, Outcome, Plan, PlanError, PlannedQuery, RefLabels, ScrapeLabels,
};
use crate::model::{Direction, Kind, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, split_by_le, Selector};

const COUNTS: &str = "response_total";
const BUCKETS: &str = "response_latency_ms_bucket";

/// The kinds Linkerd labels (it has no notion of a service's own traffic).
const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];

/// The Linkerd adapter.
#[derive(Debug, Clone, Default)]
pub struct Linkerd {
    scrape: ScrapeLabels,
}

impl Linkerd {
    /// An adapter reading the given scrape-added label names.
    pub fn new(scrape: ScrapeLabels) -> Self {
        Linkerd { scrape }
    }

    /// The label naming the scraped pod's object of `kind` (the caller on outbound series).
    fn own_label(&self, kind: Kind) -> &str {
        match kind {
            Kind::Namespace => &self.scrape.namespace,
            Kind::Pod => &self.scrape.pod,
            Kind::Deployment => "deployment",
            Kind::DaemonSet => "daemonset",
            Kind::StatefulSet => "statefulset",
            Kind::Job => "k8s_job",
            Kind::Service => unreachable!("plan() rejects kinds Linkerd does not label"),
        }
    }

    /// The label naming the destination's object of `kind` on outbound series.
    fn dst_label(kind: Kind) -> &'static str {
        match kind {
            Kind::Namespace => "dst_namespace",
            Kind::Pod => "dst_pod",
            Kind::Deployment => "dst_deployment",
            Kind::DaemonSet => "dst_daemonset",
            Kind::StatefulSet => "dst_statefulset",
            Kind::Job => "dst_k8s_job",
            Kind::Service => unreachable!("plan() rejects kinds Linkerd does not label"),
        }
    }

    fn own_ref(&self, kind: Kind) -> RefLabels {
        RefLabels::new(kind, &self.scrape.namespace, self.own_label(kind))
    }

    fn dst_ref(kind: Kind) -> RefLabels {
        RefLabels::new(kind, "dst_namespace", Self::dst_label(kind))
    }

    /// The one query over the counters and latency buckets of the series matching `sel`
    /// (whatever its metric name), grouped by `item`.
    fn combined(
        q: &StatsQuery,
        sel: &Selector,
        item: RefLabels,
        direction: Option<Direction>,
    ) -> PlannedQuery {
        let both = sel
            .with_metric("")
            .re("__name__", &format!("{COUNTS}|{BUCKETS}"));
        PlannedQuery::combined(
            item,
            direction,
            &increase(&[""], &both, q.window),
            &["classification"],
            1.0,
        )
    }
}

impl Mesh for Linkerd {
    fn name(&self) -> &'static str {
        "linkerd"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        check_kind(self, q.target.kind())?;
        let mut queries = Vec::with_capacity(2);
        let inbound = Selector::new(COUNTS).eq("direction", "inbound");
        match &q.target {
            Target::List { kind, namespace } => {
                let item = self.own_ref(*kind);
                // a list reads every series of a namespace or of the mesh: two halves
                // that Prometheus evaluates in parallel
                let sel = match (kind, namespace) {
                    // the scrape puts these labels on every series: requiring them would
                    // only make Prometheus merge the postings of each of their values
                    (Kind::Pod | Kind::Namespace, Some(ns)) => {
                        inbound.eq(&self.scrape.namespace, ns)
                    }
                    (Kind::Pod | Kind::Namespace, None) => inbound,
                    _ => item.within(inbound, namespace.as_deref()),
                };
                for half in split_by_le(&sel) {
                    queries.push(Self::combined(q, &half, item.clone(), None));
                }
            }
            Target::One(r) => {
                let item = self.own_ref(r.kind);
                let sel = item.pin(inbound, r);
                queries.push(Self::combined(q, &sel, item, None));
            }
            Target::Edges(r) => {
                let own = self.own_ref(r.kind);
                let dst = Self::dst_ref(r.kind);
                let outbound = Selector::new(COUNTS).eq("direction", "outbound");
                // Both sides are pinned to the resource, so few series match. A peer
                // label's presence is not required in PromQL (`dst_deployment!=""` makes
                // Prometheus merge the postings of every value of the label, a third of
                // the query's time at 1,000 workloads); series without it fold into no
                // item instead.
                // to: the resource's own outbound series, peers named by dst_* labels
                let to = own.pin(outbound.clone(), r);
                queries.push(Self::combined(q, &to, dst.clone(), Some(Direction::To)));
                // from: callers' outbound series whose dst_* labels name the resource
                let from = dst.pin(outbound, r);
                queries.push(Self::combined(q, &from, own, Some(Direction::From)));
            }
        }
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        Outcome::failure_if(labels.get("classification") == Some("failure"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceRef, UnixMillis};
    use std::time::Duration;

    fn q(target: Target) -> StatsQuery {
        StatsQuery {
            target,
            window: Duration::from_secs(30),
            at: UnixMillis(0),
        }
    }

    fn promql(target: Target) -> Vec<String> {
        Linkerd::default()
            .plan(&q(target))
            .unwrap()
            .queries
            .into_iter()
            .map(|p| p.promql)
            .collect()
    }

    #[test]
    fn namespaced_list_is_one_grouped_inbound_query_in_two_halves() {
        let p = promql(Target::List {
            kind: Kind::Deployment,
            namespace: Some("shop".into()),
        });
        assert_eq!(
            p,
            [
                r#"sum by (le, namespace, deployment, classification) (increase({direction="inbound", deployment!="", namespace="shop", le=~"(0\\.0*)?[1-3].*", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#,
                r#"sum by (le, namespace, deployment, classification) (increase({direction="inbound", deployment!="", namespace="shop", le!~"(0\\.0*)?[1-3].*", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#,
            ]
        );
    }

    #[test]
    fn namespace_list_groups_by_namespace_only() {
        let p = promql(Target::List {
            kind: Kind::Namespace,
            namespace: None,
        });
        assert_eq!(
            p[0],
            r#"sum by (le, namespace, classification) (increase({direction="inbound", le=~"(0\\.0*)?[1-3].*", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#
        );
    }

    #[test]
    fn edges_pin_both_namespace_and_name() {
        let p = promql(Target::Edges(ResourceRef::namespaced(
            Kind::Job,
            "batch",
            "report",
        )));
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            r#"sum by (le, dst_namespace, dst_k8s_job, classification) (increase({direction="outbound", k8s_job="report", namespace="batch", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#
        );
        assert_eq!(
            p[1],
            r#"sum by (le, namespace, k8s_job, classification) (increase({direction="outbound", dst_k8s_job="report", dst_namespace="batch", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#
        );
    }

    #[test]
    fn namespace_edges_use_namespace_labels() {
        let p = promql(Target::Edges(ResourceRef::namespace("shop")));
        assert!(
            p[0].starts_with(r#"sum by (le, dst_namespace, classification) (increase({direction="outbound", namespace="shop", __name__"#),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with(r#"sum by (le, namespace, classification) (increase({direction="outbound", dst_namespace="shop", __name__"#),
            "{}",
            p[1]
        );
    }

    #[test]
    fn custom_scrape_labels_are_used() {
        let l = Linkerd::new(ScrapeLabels {
            namespace: "kubernetes_namespace".into(),
            pod: "kubernetes_pod_name".into(),
        });
        let p = l
            .plan(&q(Target::One(ResourceRef::namespaced(
                Kind::Pod,
                "a",
                "p-1",
            ))))
            .unwrap();
        assert_eq!(
            p.queries[0].promql,
            r#"sum by (le, kubernetes_namespace, kubernetes_pod_name, classification) (increase({direction="inbound", kubernetes_pod_name="p-1", kubernetes_namespace="a", __name__=~"response_total|response_latency_ms_bucket"}[30s]))"#
        );
    }

    #[test]
    fn services_are_not_a_linkerd_kind() {
        let err = Linkerd::default()
            .plan(&q(Target::List {
                kind: Kind::Service,
                namespace: None,
            }))
            .unwrap_err();
        assert!(matches!(
            err,
            PlanError::UnsupportedKind {
                kind: Kind::Service,
                ..
            }
        ));
    }

    #[test]
    fn classification_decides_outcome() {
        let l = Linkerd::default();
        assert_eq!(
            l.outcome(&Labels::from_pairs([("classification", "failure")])),
            Outcome::Failure
        );
        assert_eq!(
            l.outcome(&Labels::from_pairs([("classification", "success")])),
            Outcome::Success
        );
    }
}
