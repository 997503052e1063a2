//! Open Service Mesh, from either of its two data paths ([`OsmStats`]).
//!
//! **WASM statistics** (`featureFlags.enableWASMStats`): `osm_request_total` and
//! `osm_request_duration_ms_bucket`, recorded by the **calling** proxy only, with both
//! ends labelled (`source_*`/`destination_*`: namespace, kind, name, pod). Resources,
//! `from` edges and `to` edges all come from these client-side series, so only traffic
//! between two meshed pods is seen and latency is the caller's. The labels are cut out of
//! Envoy stat names, where every character outside `[A-Za-z0-9_]` became `_`
//! ([`Codec::Sanitized`]): names are read back with `_` → `-` and a requested name is
//! sanitised before matching, so `store.v1` is reported (merged with `store-v1`, if
//! both exist) as `store-v1`. Success: `response_code` 5xx fails; gRPC failures hide
//! behind HTTP 200.
//!
//! **Envoy statistics only** (OSM's bundled Prometheus keeps
//! `envoy_cluster_upstream_rq_xx` but drops every latency histogram): the server side
//! is the local cluster (`<namespace>/<service>|<port>|local`) of the serving proxy,
//! whose scrape labels (`source_namespace`, `source_pod_name`, `source_workload_kind`,
//! `source_workload_name` in OSM's relabelling) name it. Counts only, **no latency**, no
//! edges (the other end is only a Service in a cluster name). Success:
//! `envoy_response_code_class="5"` fails.

use serde::Deserialize;

use crate::codec::Codec;
use crate::mesh::{
    check_kind, failing_http, Mesh, Outcome, Plan, PlanError, PlannedQuery, RefLabels, ScrapeLabels,
};
use crate::model::{Direction, Kind, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, Selector};

const WASM_COUNTS: &str = "osm_request_total";
const WASM_BUCKETS: &str = "osm_request_duration_ms_bucket";
const ENVOY_COUNTS: &str = "envoy_cluster_upstream_rq_xx";
const LOCAL_CLUSTER: &str = r".+\|local";
const CLASS: &str = "envoy_response_code_class";

const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];

/// Which OSM data the adapter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OsmStats {
    /// The WASM extension's `osm_request_*` series (counts, latency, edges).
    #[default]
    Wasm,
    /// Envoy's cluster counters only (counts of resources, no latency, no edges).
    Envoy,
}

/// The OSM adapter.
#[derive(Debug, Clone)]
pub struct Osm {
    scrape: ScrapeLabels,
    stats: OsmStats,
}

impl Default for Osm {
    fn default() -> Self {
        Osm::new(Osm::scrape_defaults(), OsmStats::Wasm)
    }
}

/// How OSM writes a workload kind.
fn kind_value(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Deployment => Some("Deployment"),
        Kind::DaemonSet => Some("DaemonSet"),
        Kind::StatefulSet => Some("StatefulSet"),
        Kind::Job => Some("Job"),
        Kind::Namespace | Kind::Pod | Kind::Service => None,
    }
}

impl Osm {
    /// An adapter reading `stats`, with these scrape labels (Envoy statistics only).
    pub fn new(scrape: ScrapeLabels, stats: OsmStats) -> Self {
        Osm { scrape, stats }
    }

    /// The scrape labels of OSM's bundled Prometheus.
    pub fn scrape_defaults() -> ScrapeLabels {
        ScrapeLabels {
            namespace: "source_namespace".into(),
            pod: "source_pod_name".into(),
        }
    }

    /// One end (`source` or `destination`) of a WASM series as an object of `kind`, and
    /// the matcher its kind needs.
    fn wasm_end(end: &str, kind: Kind) -> (RefLabels, Option<(String, &'static str)>) {
        let ns = format!("{end}_namespace");
        let item = match kind {
            Kind::Namespace => RefLabels::new(kind, "", &ns),
            Kind::Pod => RefLabels::new(kind, &ns, &format!("{end}_pod")),
            _ => RefLabels::new(kind, &ns, &format!("{end}_name")),
        };
        let kind_matcher = kind_value(kind).map(|v| (format!("{end}_kind"), v));
        (item.with_codec(Codec::Sanitized), kind_matcher)
    }

    fn wasm_pair(
        item: RefLabels,
        direction: Option<Direction>,
        sel: &Selector,
        q: &StatsQuery,
    ) -> [PlannedQuery; 2] {
        [
            PlannedQuery::counts(
                item.clone(),
                direction,
                &increase(&[WASM_COUNTS], sel, q.window),
                &["response_code"],
            ),
            PlannedQuery::buckets(
                item,
                direction,
                &increase(&[WASM_BUCKETS], sel, q.window),
                1.0,
            ),
        ]
    }

    fn wasm(&self, q: &StatsQuery) -> Vec<PlannedQuery> {
        let kind = q.target.kind();
        let with_kind = |sel: Selector, m: &Option<(String, &str)>| match m {
            Some((label, value)) => sel.eq(label, value),
            None => sel,
        };
        let (src, src_kind) = Self::wasm_end("source", kind);
        let (dst, dst_kind) = Self::wasm_end("destination", kind);
        let all = Selector::new(WASM_COUNTS);
        let mut queries = Vec::with_capacity(4);
        match &q.target {
            Target::List { namespace, .. } => {
                let sel = with_kind(dst.within(all, namespace.as_deref()), &dst_kind);
                queries.extend(Self::wasm_pair(dst, None, &sel, q));
            }
            Target::One(r) => {
                let sel = with_kind(dst.pin(all, r), &dst_kind);
                queries.extend(Self::wasm_pair(dst, None, &sel, q));
            }
            Target::Edges(r) => {
                let to = with_kind(with_kind(src.pin(all.clone(), r), &src_kind), &dst_kind)
                    .present(&dst.name);
                queries.extend(Self::wasm_pair(dst.clone(), Some(Direction::To), &to, q));
                let from =
                    with_kind(with_kind(dst.pin(all, r), &dst_kind), &src_kind).present(&src.name);
                queries.extend(Self::wasm_pair(src, Some(Direction::From), &from, q));
            }
        }
        queries
    }

    fn envoy(&self, q: &StatsQuery) -> Result<Vec<PlannedQuery>, PlanError> {
        let kind = q.target.kind();
        let item = match kind {
            Kind::Namespace => RefLabels::new(kind, "", &self.scrape.namespace),
            Kind::Pod => RefLabels::new(kind, &self.scrape.namespace, &self.scrape.pod),
            _ => RefLabels::new(kind, &self.scrape.namespace, "source_workload_name"),
        };
        let mut inbound = Selector::new(ENVOY_COUNTS).re("envoy_cluster_name", LOCAL_CLUSTER);
        if let Some(v) = kind_value(kind) {
            inbound = inbound.eq("source_workload_kind", v);
        }
        let sel = match &q.target {
            Target::List { namespace, .. } => item.within(inbound, namespace.as_deref()),
            Target::One(r) => item.pin(inbound, r),
            Target::Edges(_) => {
                return Err(PlanError::UnsupportedEdges {
                    mesh: self.name(),
                    kind,
                    why: "with Envoy statistics only, OSM names the other end of a request by Service cluster; enable WASM statistics (osmStats: wasm) for edges",
                })
            }
        };
        Ok(vec![PlannedQuery::counts(
            item,
            None,
            &increase(&[ENVOY_COUNTS], &sel, q.window),
            &[CLASS],
        )])
    }
}

impl Mesh for Osm {
    fn name(&self) -> &'static str {
        "osm"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        check_kind(self, q.target.kind())?;
        let queries = match self.stats {
            OsmStats::Wasm => self.wasm(q),
            OsmStats::Envoy => self.envoy(q)?,
        };
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        match self.stats {
            OsmStats::Wasm => Outcome::failure_if(failing_http(
                labels.get("response_code").unwrap_or_default(),
            )),
            OsmStats::Envoy => Outcome::failure_if(labels.get(CLASS) == Some("5")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Family;
    use crate::model::{ResourceRef, UnixMillis};
    use std::time::Duration;

    fn plan(o: &Osm, target: Target) -> Result<Vec<PlannedQuery>, PlanError> {
        Ok(o.plan(&StatsQuery {
            target,
            window: Duration::from_secs(60),
            at: UnixMillis(0),
        })?
        .queries)
    }

    #[test]
    fn wasm_resources_are_measured_by_callers_with_sanitised_names() {
        let p = plan(
            &Osm::default(),
            Target::One(ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "store-v1",
            )),
        )
        .unwrap();
        assert_eq!(
            p[0].promql,
            r#"sum by (destination_namespace, destination_name, response_code) (increase(osm_request_total{destination_name="store_v1", destination_namespace="shop", destination_kind="Deployment"}[60s]))"#
        );
        assert!(p[1].promql.contains("osm_request_duration_ms_bucket{"));
        let sample = Labels::from_pairs([
            ("destination_namespace", "shop"),
            ("destination_name", "store_v1"),
        ]);
        assert_eq!(
            p[0].item.read(&sample),
            Some(ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "store-v1"
            ))
        );
    }

    #[test]
    fn wasm_edges_pin_kinds_on_both_ends() {
        let p = plan(
            &Osm::default(),
            Target::Edges(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db")),
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert!(p[0].promql.contains(r#"{source_name="db", source_namespace="shop", source_kind="StatefulSet", destination_kind="StatefulSet", destination_name!=""}"#), "{}", p[0].promql);
        assert!(p[2].promql.contains(r#"{destination_name="db", destination_namespace="shop", destination_kind="StatefulSet", source_kind="StatefulSet", source_name!=""}"#), "{}", p[2].promql);
        let pods = plan(
            &Osm::default(),
            Target::Edges(ResourceRef::namespaced(Kind::Pod, "shop", "db-0")),
        )
        .unwrap();
        assert!(
            pods[0]
                .promql
                .contains(r#"{source_pod="db_0", source_namespace="shop", destination_pod!=""}"#),
            "{}",
            pods[0].promql
        );
    }

    #[test]
    fn envoy_only_counts_resources_without_latency_or_edges() {
        let o = Osm::new(Osm::scrape_defaults(), OsmStats::Envoy);
        let p = plan(
            &o,
            Target::List {
                kind: Kind::Deployment,
                namespace: Some("shop".into()),
            },
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].family, Family::Counts);
        assert_eq!(
            p[0].promql,
            r#"sum by (source_namespace, source_workload_name, envoy_response_code_class) (increase(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~".+\\|local", source_workload_kind="Deployment", source_workload_name!="", source_namespace="shop"}[60s]))"#
        );
        assert!(matches!(
            plan(&o, Target::Edges(ResourceRef::namespace("shop"))),
            Err(PlanError::UnsupportedEdges { .. })
        ));
        assert_eq!(
            o.outcome(&Labels::from_pairs([(CLASS, "5")])),
            Outcome::Failure
        );
        assert_eq!(
            Osm::default().outcome(&Labels::from_pairs([("response_code", "503")])),
            Outcome::Failure
        );
        assert_eq!(
            Osm::default().outcome(&Labels::from_pairs([("response_code", "404")])),
            Outcome::Success
        );
    }
}
