//! Kuma / Kong Mesh: Envoy cluster statistics with the labels Kuma's Prometheus
//! integration adds (`mesh`, `kuma_io_service`, `kuma_workload`, `namespace`, `pod`).
//!
//! * Every data plane proxy counts requests per upstream cluster in
//!   `envoy_cluster_upstream_rq_xx` and `envoy_cluster_upstream_rq_time`. The local
//!   (inbound) cluster, `localhost_<port>` (`self_inbound_dp_<section>` with the newer
//!   naming), carries what the proxy's workload served: the server side, used for
//!   resources. Outbound clusters are named after the callee's `kuma.io/service` tag,
//!   `<service>_<namespace>_svc_<port>` on Kubernetes: the client side, used for edges
//!   in both directions (server-side statistics do not name the caller).
//! * Counters reach Prometheus with or without a `_total` suffix (Kuma's OpenTelemetry
//!   based MeshMetric pipeline appends it); both names are queried with `or`.
//! * Kinds: `Service` (decoded from `kuma_io_service` and cluster names), `Namespace`,
//!   `Pod`, and workloads named by `kuma_workload` (the `kuma.io/workload` label; its
//!   kind comes from [`WorkloadKinds`]). Pods and workloads have no edges: outbound
//!   clusters name services only.
//! * Success: `envoy_response_code_class="5"` fails (resets and unreachable upstreams
//!   become 503); gRPC failures hide behind HTTP 200 and count as successes.
//! * MeshService clusters (`…_msvc_…`, `kri_msvc_…`) are not decoded.

use std::sync::Arc;

use crate::codec::Codec;
use crate::mesh::{
    check_kind, Mesh, Outcome, Plan, PlanError, PlannedQuery, RefLabels, ScrapeLabels,
};
use crate::model::{Direction, Kind, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, Selector};
use crate::workloads::WorkloadKinds;

const COUNTS: [&str; 2] = [
    "envoy_cluster_upstream_rq_xx",
    "envoy_cluster_upstream_rq_xx_total",
];
const BUCKETS: [&str; 1] = ["envoy_cluster_upstream_rq_time_bucket"];
const CLUSTER: &str = "envoy_cluster_name";
const CLASS: &str = "envoy_response_code_class";
const LOCAL_CLUSTER: &str = "localhost_[0-9]+|self_inbound_dp_.+";
/// `kuma.io/service` on Kubernetes (also the outbound cluster name).
const SERVICE_TAG: Codec = Codec::Template("{name}_{namespace}_svc_{number}");

const KINDS: [Kind; 7] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
    Kind::Service,
];

/// The Kuma adapter.
#[derive(Debug, Clone, Default)]
pub struct Kuma {
    scrape: ScrapeLabels,
    mesh: Option<String>,
    kinds: Arc<WorkloadKinds>,
}

impl Kuma {
    /// An adapter reading these scrape labels, restricted to one Kuma mesh if given,
    /// mapping `kuma_workload` names to kinds by `kinds`.
    pub fn new(scrape: ScrapeLabels, mesh: Option<String>, kinds: WorkloadKinds) -> Self {
        Kuma {
            scrape,
            mesh,
            kinds: Arc::new(kinds),
        }
    }

    fn series(&self) -> Selector {
        let sel = Selector::new(COUNTS[0]);
        match &self.mesh {
            Some(m) => sel.eq("mesh", m),
            None => sel,
        }
    }

    /// The scraped proxy as an object of `kind`.
    fn own(&self, kind: Kind) -> RefLabels {
        match kind {
            Kind::Namespace => RefLabels::new(kind, "", &self.scrape.namespace),
            Kind::Pod => RefLabels::new(kind, &self.scrape.namespace, &self.scrape.pod),
            Kind::Service => {
                RefLabels::new(kind, "kuma_io_service", "kuma_io_service").with_codec(SERVICE_TAG)
            }
            _ => RefLabels::new(kind, &self.scrape.namespace, "kuma_workload")
                .with_kinds(self.kinds.clone()),
        }
    }

    /// The callee named by an outbound cluster.
    fn callee(kind: Kind) -> RefLabels {
        RefLabels::new(kind, CLUSTER, CLUSTER).with_codec(SERVICE_TAG)
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
                &increase(&COUNTS, sel, q.window),
                &[CLASS],
            ),
            PlannedQuery::buckets(item, direction, &increase(&BUCKETS, sel, q.window), 1.0),
        ]
    }
}

impl Mesh for Kuma {
    fn name(&self) -> &'static str {
        "kuma"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        let kind = q.target.kind();
        check_kind(self, kind)?;
        let inbound = self.series().re(CLUSTER, LOCAL_CLUSTER);
        let item = self.own(kind);
        let mut queries = Vec::with_capacity(4);
        match &q.target {
            Target::List { namespace, .. } => {
                let sel = item.within(inbound, namespace.as_deref());
                queries.extend(Self::pair(item, None, &sel, q));
            }
            Target::One(r) => {
                let sel = item.pin(inbound, r);
                queries.extend(Self::pair(item, None, &sel, q));
            }
            Target::Edges(r) if matches!(kind, Kind::Service | Kind::Namespace) => {
                let callee = Self::callee(kind);
                let outbound = self.series().re(CLUSTER, &SERVICE_TAG.encode(None, None).1);
                let to = item.pin(outbound.clone(), r);
                queries.extend(Self::pair(callee.clone(), Some(Direction::To), &to, q));
                let from = callee.pin(outbound, r).present(&item.name);
                queries.extend(Self::pair(item, Some(Direction::From), &from, q));
            }
            Target::Edges(_) => return Err(PlanError::UnsupportedEdges {
                mesh: self.name(),
                kind,
                why: "Kuma's outbound clusters name the callee's service, not its workload or pod",
            }),
        }
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        Outcome::failure_if(labels.get(CLASS) == Some("5"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceRef, UnixMillis};
    use std::time::Duration;

    fn plan(k: &Kuma, target: Target) -> Result<Vec<String>, PlanError> {
        Ok(k.plan(&StatsQuery {
            target,
            window: Duration::from_secs(60),
            at: UnixMillis(0),
        })?
        .queries
        .into_iter()
        .map(|p| p.promql)
        .collect())
    }

    #[test]
    fn services_are_read_from_the_local_cluster_under_both_names() {
        let k = Kuma::new(
            ScrapeLabels::default(),
            Some("default".into()),
            WorkloadKinds::default(),
        );
        let p = plan(
            &k,
            Target::List {
                kind: Kind::Service,
                namespace: Some("shop".into()),
            },
        )
        .unwrap();
        assert_eq!(
            p[0],
            concat!(
                r#"sum by (kuma_io_service, envoy_response_code_class) ("#,
                r#"(increase(envoy_cluster_upstream_rq_xx{mesh="default", envoy_cluster_name=~"localhost_[0-9]+|self_inbound_dp_.+", kuma_io_service=~".+_shop_svc_[0-9]+"}[60s])"#,
                r#" or increase(envoy_cluster_upstream_rq_xx_total{mesh="default", envoy_cluster_name=~"localhost_[0-9]+|self_inbound_dp_.+", kuma_io_service=~".+_shop_svc_[0-9]+"}[60s])))"#
            )
        );
        assert!(p[1].starts_with(r#"sum by (le, kuma_io_service) (increase(envoy_cluster_upstream_rq_time_bucket{mesh="default", "#));
    }

    #[test]
    fn service_edges_come_from_outbound_clusters() {
        let p = plan(
            &Kuma::default(),
            Target::Edges(ResourceRef::namespaced(Kind::Service, "shop", "api")),
        )
        .unwrap();
        assert!(p[0].starts_with("sum by (envoy_cluster_name, envoy_response_code_class)"));
        assert!(p[0].contains(r#"{envoy_cluster_name=~".+_.+_svc_[0-9]+", kuma_io_service=~"api_shop_svc_[0-9]+"}"#), "{}", p[0]);
        assert!(p[2].starts_with("sum by (kuma_io_service, envoy_response_code_class)"));
        assert!(
            p[2].contains(r#"envoy_cluster_name=~"api_shop_svc_[0-9]+", kuma_io_service!=""}"#),
            "{}",
            p[2]
        );
        let ns = plan(
            &Kuma::default(),
            Target::Edges(ResourceRef::namespace("shop")),
        )
        .unwrap();
        assert!(ns[0].contains(r#"namespace="shop""#));
        assert!(
            ns[2].contains(r#"envoy_cluster_name=~".+_shop_svc_[0-9]+", namespace!=""}"#),
            "{}",
            ns[2]
        );
    }

    #[test]
    fn workloads_have_resources_but_no_edges() {
        let p = plan(
            &Kuma::default(),
            Target::One(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db")),
        )
        .unwrap();
        assert!(
            p[0].contains(r#"kuma_workload="db", namespace="shop""#),
            "{}",
            p[0]
        );
        for kind in [Kind::Pod, Kind::Deployment] {
            assert!(matches!(
                plan(
                    &Kuma::default(),
                    Target::Edges(ResourceRef::namespaced(kind, "a", "b"))
                ),
                Err(PlanError::UnsupportedEdges { .. })
            ));
        }
    }
}
