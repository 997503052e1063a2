//! Cilium / Hubble (httpV2 handler): `hubble_http_requests_total` and
//! `hubble_http_request_duration_seconds_bucket`, with `labelsContext` set to (at least)
//! `source_namespace,source_workload,source_pod,destination_namespace,destination_workload,destination_pod`.
//!
//! * Each endpoint under L7 visibility reports its side of a request: `reporter="server"`
//!   at the callee, `reporter="client"` at the caller. Resources and `from` edges are
//!   server side, `to` edges client side; nothing is summed across reporters.
//! * Hubble knows every endpoint's identity, so a peer without L7 visibility still has
//!   a namespace, workload and pod (an unmeshed caller appears in `from` edges, an
//!   unmeshed callee in `to` edges); peers outside the cluster (`world`) have none and
//!   are left out.
//! * Workloads carry no kind: [`WorkloadKinds`] decides (Hubble, like Istio, names a
//!   CronJob's Job after the CronJob).
//! * Latency buckets are in seconds (Go client defaults `.005 … 10`) and are scaled to ms.
//! * Success: `status` 5xx fails. gRPC failures hide behind HTTP 200 (Hubble has no gRPC
//!   status label), so they count as successes.
//! * The scrape labels (`namespace`, `pod`) describe the cilium-agent, not the traffic,
//!   and are not used.

use std::sync::Arc;

use crate::mesh::{
    check_kind, failing_http, Mesh, Outcome, Plan, PlanError, PlannedQuery, RefLabels,
};
use crate::model::{Direction, Kind, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, Selector};
use crate::workloads::WorkloadKinds;

const REQUESTS: &str = "hubble_http_requests_total";
const DURATION: &str = "hubble_http_request_duration_seconds_bucket";
/// Seconds to milliseconds.
const LE_SCALE: f64 = 1000.0;

const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];

/// The Cilium (Hubble) adapter.
#[derive(Debug, Clone, Default)]
pub struct Cilium {
    kinds: Arc<WorkloadKinds>,
}

impl Cilium {
    /// An adapter mapping workload names to kinds by `kinds`.
    pub fn new(kinds: WorkloadKinds) -> Self {
        Cilium {
            kinds: Arc::new(kinds),
        }
    }

    /// The labels naming one end (`source` or `destination`) as an object of `kind`.
    fn end(&self, end: &str, kind: Kind) -> RefLabels {
        let ns = format!("{end}_namespace");
        match kind {
            Kind::Namespace => RefLabels::new(kind, "", &ns),
            Kind::Pod => RefLabels::new(kind, &ns, &format!("{end}_pod")),
            _ => {
                RefLabels::new(kind, &ns, &format!("{end}_workload")).with_kinds(self.kinds.clone())
            }
        }
    }

    fn pair(
        item: RefLabels,
        direction: Option<Direction>,
        sel: &Selector,
        q: &StatsQuery,
    ) -> [PlannedQuery; 2] {
        [
            PlannedQuery::counts(
                item.clone(),
                direction,
                &increase(&[REQUESTS], sel, q.window),
                &["status"],
            ),
            PlannedQuery::buckets(
                item,
                direction,
                &increase(&[DURATION], sel, q.window),
                LE_SCALE,
            ),
        ]
    }
}

impl Mesh for Cilium {
    fn name(&self) -> &'static str {
        "cilium"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        let kind = q.target.kind();
        check_kind(self, kind)?;
        let server = Selector::new(REQUESTS).eq("reporter", "server");
        let client = Selector::new(REQUESTS).eq("reporter", "client");
        let (src, dst) = (self.end("source", kind), self.end("destination", kind));
        let mut queries = Vec::with_capacity(4);
        match &q.target {
            Target::List { namespace, .. } => {
                let sel = dst.within(server, namespace.as_deref());
                queries.extend(Self::pair(dst, None, &sel, q));
            }
            Target::One(r) => {
                let sel = dst.pin(server, r);
                queries.extend(Self::pair(dst, None, &sel, q));
            }
            Target::Edges(r) => {
                let to = src.pin(client, r).present(&dst.name);
                queries.extend(Self::pair(dst.clone(), Some(Direction::To), &to, q));
                let from = dst.pin(server, r).present(&src.name);
                queries.extend(Self::pair(src, Some(Direction::From), &from, q));
            }
        }
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        Outcome::failure_if(failing_http(labels.get("status").unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceRef, UnixMillis};
    use std::time::Duration;

    fn plan(target: Target) -> Vec<crate::mesh::PlannedQuery> {
        Cilium::default()
            .plan(&StatsQuery {
                target,
                window: Duration::from_secs(300),
                at: UnixMillis(0),
            })
            .unwrap()
            .queries
    }

    #[test]
    fn resources_are_server_side_and_buckets_are_scaled() {
        let p = plan(Target::One(ResourceRef::namespaced(
            Kind::Pod,
            "shop",
            "db-0",
        )));
        assert_eq!(
            p[0].promql,
            r#"sum by (destination_namespace, destination_pod, status) (increase(hubble_http_requests_total{reporter="server", destination_pod="db-0", destination_namespace="shop"}[300s]))"#
        );
        assert_eq!(
            p[1].promql,
            r#"sum by (le, destination_namespace, destination_pod) (increase(hubble_http_request_duration_seconds_bucket{reporter="server", destination_pod="db-0", destination_namespace="shop"}[300s]))"#
        );
        assert_eq!((p[0].le_scale, p[1].le_scale), (1.0, 1000.0));
    }

    #[test]
    fn edges_pick_one_reporter_each() {
        let p = plan(Target::Edges(ResourceRef::namespaced(
            Kind::Deployment,
            "shop",
            "api",
        )));
        assert_eq!(p.len(), 4);
        assert!(p[0].promql.contains(r#"{reporter="client", source_workload="api", source_namespace="shop", destination_workload!=""}"#), "{}", p[0].promql);
        assert_eq!(p[0].direction, Some(Direction::To));
        assert!(p[2].promql.contains(r#"{reporter="server", destination_workload="api", destination_namespace="shop", source_workload!=""}"#), "{}", p[2].promql);
        assert!(p[2]
            .promql
            .starts_with("sum by (source_namespace, source_workload, status)"));
    }

    #[test]
    fn status_decides_and_grpc_is_invisible() {
        let c = Cilium::default();
        let o = |s: &str| c.outcome(&Labels::from_pairs([("status", s)]));
        assert_eq!(o("200"), Outcome::Success);
        assert_eq!(o("429"), Outcome::Success);
        assert_eq!(o("503"), Outcome::Failure);
    }
}
