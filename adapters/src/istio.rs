//! Istio (telemetry v2, 1.5+): `istio_requests_total` and
//! `istio_request_duration_milliseconds_bucket`.
//!
//! Every request between two sidecars is reported twice, once per `reporter`; each
//! query picks one side so nothing is counted twice:
//!
//! * Resources are server side: `reporter="destination"` (the serving sidecar) or
//!   `reporter="waypoint"` (ambient mode: the waypoint in front of the workload; an
//!   ambient workload has no sidecar, so the two never report the same request).
//!   Unmeshed callers are included (`source_workload="unknown"`).
//! * `from` edges are server side too: those series carry the caller's workload.
//! * `to` edges are client side (`reporter="source"`) for callers with a sidecar.
//!   Callers without one (ambient) have no client-side L7 series; their calls are
//!   taken from the server side, for exactly the callers that have no
//!   `reporter="source"` series (`unless on (source_workload_namespace, source_workload)`).
//! * Pods: the scraped (reporting) pod of `reporter="destination"` series. Edges of
//!   pods do not exist: the remote end is named by workload only.
//! * Workloads carry no kind: [`WorkloadKinds`] decides (Istio names a Job created by a
//!   CronJob after the CronJob: `report-28419360` reports as `report`).
//! * Success: `response_code` 5xx or `0` (no response) fail, as do the failing gRPC
//!   statuses in `grpc_response_status`.

use std::sync::Arc;

use crate::mesh::{
    check_kind, failing_grpc, failing_http, Mesh, Outcome, Plan, PlanError, PlannedQuery,
    RefLabels, ScrapeLabels,
};
use crate::model::{Direction, Kind, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, Selector};
use crate::workloads::WorkloadKinds;

const REQUESTS: &str = "istio_requests_total";
const DURATION: &str = "istio_request_duration_milliseconds_bucket";
/// Reporters that see a request at (or in front of) the server.
const SERVER_SIDE: &str = "destination|waypoint";
/// Labels the outcome is read from.
const OUTCOME: [&str; 2] = ["response_code", "grpc_response_status"];

const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];

/// The Istio adapter.
#[derive(Debug, Clone, Default)]
pub struct Istio {
    scrape: ScrapeLabels,
    kinds: Arc<WorkloadKinds>,
}

impl Istio {
    /// An adapter reading these scrape labels, mapping workload names to kinds by `kinds`.
    pub fn new(scrape: ScrapeLabels, kinds: WorkloadKinds) -> Self {
        Istio {
            scrape,
            kinds: Arc::new(kinds),
        }
    }

    /// The labels naming one end of a request (`source` or `destination`).
    fn end(&self, end: &str, kind: Kind) -> RefLabels {
        let ns = format!("{end}_workload_namespace");
        match kind {
            Kind::Namespace => RefLabels::new(kind, "", &ns),
            _ => {
                RefLabels::new(kind, &ns, &format!("{end}_workload")).with_kinds(self.kinds.clone())
            }
        }
    }

    /// The item of server-side resource queries.
    fn resource(&self, kind: Kind) -> RefLabels {
        match kind {
            Kind::Pod => RefLabels::new(kind, &self.scrape.namespace, &self.scrape.pod),
            _ => self.end("destination", kind),
        }
    }

    /// Server-side series; pods only from sidecars (a waypoint's pod is not the server).
    fn server_side(kind: Kind) -> Selector {
        let sel = Selector::new(REQUESTS);
        if kind == Kind::Pod {
            sel.eq("reporter", "destination")
        } else {
            sel.re("reporter", SERVER_SIDE)
        }
    }

    /// Counts and buckets with the increases `expr(metric)` builds.
    fn pair(
        item: RefLabels,
        direction: Option<Direction>,
        expr: impl Fn(&str) -> String,
    ) -> [PlannedQuery; 2] {
        [
            PlannedQuery::counts(item.clone(), direction, &expr(REQUESTS), &OUTCOME),
            PlannedQuery::buckets(item, direction, &expr(DURATION), 1.0),
        ]
    }
}

impl Mesh for Istio {
    fn name(&self) -> &'static str {
        "istio"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        let kind = q.target.kind();
        check_kind(self, kind)?;
        let w = q.window;
        let mut queries = Vec::with_capacity(4);
        match &q.target {
            Target::List { namespace, .. } => {
                let item = self.resource(kind);
                let sel = item.within(Self::server_side(kind), namespace.as_deref());
                queries.extend(Self::pair(item, None, |m| increase(&[m], &sel, w)));
            }
            Target::One(r) => {
                let item = self.resource(kind);
                let sel = item.pin(Self::server_side(kind), r);
                queries.extend(Self::pair(item, None, |m| increase(&[m], &sel, w)));
            }
            Target::Edges(_) if kind == Kind::Pod => {
                return Err(PlanError::UnsupportedEdges {
                    mesh: self.name(),
                    kind,
                    why: "Istio names the remote end of a request by workload, never by pod",
                })
            }
            Target::Edges(r) => {
                let (src, dst) = (self.end("source", kind), self.end("destination", kind));
                // to: client side where the caller has a sidecar; server side for
                // callers without one (ambient), never both.
                let mine = src
                    .pin(Selector::new(REQUESTS), r)
                    .ne("destination_workload", "unknown");
                let client = mine.clone().eq("reporter", "source");
                let server = mine.clone().re("reporter", SERVER_SIDE);
                let sidecars = src.pin(Selector::new(REQUESTS), r).eq("reporter", "source");
                let to = |m: &str| {
                    format!(
                        "({} or ({} unless on (source_workload_namespace, source_workload) {}))",
                        increase(&[m], &client, w),
                        increase(&[m], &server, w),
                        sidecars.render()
                    )
                };
                queries.extend(Self::pair(dst.clone(), Some(Direction::To), to));
                // from: server side, where the caller's workload is known.
                let from = dst
                    .pin(Selector::new(REQUESTS).re("reporter", SERVER_SIDE), r)
                    .ne("source_workload", "unknown");
                queries.extend(Self::pair(src, Some(Direction::From), |m| {
                    increase(&[m], &from, w)
                }));
            }
        }
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        let http = labels.get("response_code").unwrap_or_default();
        let grpc = labels.get("grpc_response_status").unwrap_or_default();
        Outcome::failure_if(failing_http(http) || failing_grpc(grpc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceRef, UnixMillis};
    use crate::workloads::{WorkloadKind, WorkloadRule};
    use std::time::Duration;

    fn istio() -> Istio {
        Istio::new(
            ScrapeLabels::default(),
            WorkloadKinds {
                default: WorkloadKind::Deployment,
                rules: vec![WorkloadRule {
                    kind: WorkloadKind::StatefulSet,
                    namespace: None,
                    name: "db".into(),
                }],
            },
        )
    }

    fn plan(target: Target) -> Result<Vec<String>, PlanError> {
        let q = StatsQuery {
            target,
            window: Duration::from_secs(60),
            at: UnixMillis(0),
        };
        Ok(istio()
            .plan(&q)?
            .queries
            .into_iter()
            .map(|p| p.promql)
            .collect())
    }

    #[test]
    fn resources_are_server_side_with_waypoints() {
        let p = plan(Target::List {
            kind: Kind::Deployment,
            namespace: Some("shop".into()),
        })
        .unwrap();
        assert_eq!(
            p[0],
            r#"sum by (destination_workload_namespace, destination_workload, response_code, grpc_response_status) (increase(istio_requests_total{reporter=~"destination|waypoint", destination_workload!="", destination_workload_namespace="shop"}[60s]))"#
        );
        assert_eq!(
            p[1],
            r#"sum by (le, destination_workload_namespace, destination_workload) (increase(istio_request_duration_milliseconds_bucket{reporter=~"destination|waypoint", destination_workload!="", destination_workload_namespace="shop"}[60s]))"#
        );
        let pods = plan(Target::One(ResourceRef::namespaced(
            Kind::Pod,
            "shop",
            "api-1",
        )))
        .unwrap();
        assert!(pods[0].contains(r#"{reporter="destination", pod="api-1", namespace="shop"}"#));
    }

    #[test]
    fn to_edges_never_take_both_sides() {
        let p = plan(Target::Edges(ResourceRef::namespaced(
            Kind::Deployment,
            "batch",
            "report",
        )))
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[0],
            concat!(
                r#"sum by (destination_workload_namespace, destination_workload, response_code, grpc_response_status) ("#,
                r#"(increase(istio_requests_total{source_workload="report", source_workload_namespace="batch", destination_workload!="unknown", reporter="source"}[60s])"#,
                r#" or (increase(istio_requests_total{source_workload="report", source_workload_namespace="batch", destination_workload!="unknown", reporter=~"destination|waypoint"}[60s])"#,
                r#" unless on (source_workload_namespace, source_workload) istio_requests_total{source_workload="report", source_workload_namespace="batch", reporter="source"})))"#
            )
        );
        assert_eq!(
            p[2],
            r#"sum by (source_workload_namespace, source_workload, response_code, grpc_response_status) (increase(istio_requests_total{reporter=~"destination|waypoint", destination_workload="report", destination_workload_namespace="batch", source_workload!="unknown"}[60s]))"#
        );
        let ns = plan(Target::Edges(ResourceRef::namespace("shop"))).unwrap();
        assert!(ns[0].contains(r#"{source_workload_namespace="shop", destination_workload!="unknown", reporter="source"}"#), "{}", ns[0]);
        assert!(ns[0].starts_with("sum by (destination_workload_namespace, response_code"));
    }

    #[test]
    fn pod_edges_and_services_are_refused() {
        assert!(matches!(
            plan(Target::Edges(ResourceRef::namespaced(Kind::Pod, "a", "b"))),
            Err(PlanError::UnsupportedEdges {
                kind: Kind::Pod,
                ..
            })
        ));
        assert!(matches!(
            plan(Target::List {
                kind: Kind::Service,
                namespace: None
            }),
            Err(PlanError::UnsupportedKind { .. })
        ));
    }

    #[test]
    fn workload_names_resolve_to_the_configured_kind() {
        let i = istio();
        let sample = Labels::from_pairs([
            ("destination_workload_namespace", "shop"),
            ("destination_workload", "db"),
        ]);
        assert_eq!(i.resource(Kind::Deployment).read(&sample), None);
        assert_eq!(
            i.resource(Kind::StatefulSet).read(&sample),
            Some(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db"))
        );
    }

    #[test]
    fn outcome_follows_the_smi_rule() {
        let i = istio();
        let o = |code: &str, grpc: &str| {
            i.outcome(&Labels::from_pairs([
                ("response_code", code),
                ("grpc_response_status", grpc),
            ]))
        };
        assert_eq!(o("200", ""), Outcome::Success);
        assert_eq!(o("404", ""), Outcome::Success);
        assert_eq!(o("503", ""), Outcome::Failure);
        assert_eq!(o("0", ""), Outcome::Failure);
        assert_eq!(o("200", "5"), Outcome::Success);
        assert_eq!(o("200", "14"), Outcome::Failure);
        assert_eq!(o("200", "0"), Outcome::Success);
    }
}
