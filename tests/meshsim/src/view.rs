//! What each mesh's data can tell about the same traffic: the per-mesh differences the
//! ground truth must reproduce, in one place. Emitters use the same facts (bucket
//! layouts, names, which side reports), so a dataset and its truth agree by construction
//! and the server's answers are checked against both.
//!
//! | view | resources measured | `from` edges | `to` edges | gRPC failures | resets in latency | buckets | names |
//! |---|---|---|---|---|---|---|---|
//! | Linkerd | server | client | client | yes | no | Linkerd ms | as is |
//! | Istio | server (sidecar or waypoint) | server | client (ambient callers: server) | yes | yes | Envoy ms | CronJob Jobs by CronJob |
//! | Consul | server | client | client | no | yes | Envoy ms | services |
//! | OSM (WASM) | client (meshed callers) | client | client | no | yes (whole ms) | Envoy ms | `.` read as `-` |
//! | OSM (Envoy only) | server, counts only | – | – | no | – | – | as is |
//! | Kuma | server | client | client | no | yes | Envoy ms | services |
//! | Cilium | server | server | client | no | yes | Hubble s | CronJob Jobs by CronJob |
//!
//! Edges need both ends meshed, except with Cilium, which names any pod in the cluster.

use std::fmt;

use crate::topology::{Kind, PodId, Res, Scenario};
use crate::Mesh;

/// Envoy's default histogram bounds (ms), used by Istio, Consul, Kuma and OSM.
pub(crate) const ENVOY_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Hubble's histogram bounds (the Go client defaults, in seconds) as milliseconds.
pub(crate) const HUBBLE_BUCKETS_MS: [f64; 11] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The namespace Istio datasets run in ambient mode (no sidecars, a waypoint).
pub(crate) const AMBIENT_NAMESPACE: &str = "batch";

/// One way of reading a dataset: a mesh and, for OSM, which of its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Linkerd proxy metrics.
    Linkerd,
    /// Istio standard metrics (sidecars, and one ambient namespace behind a waypoint).
    Istio,
    /// Consul's Envoy statistics.
    Consul,
    /// OSM's WASM statistics.
    Osm,
    /// OSM's Envoy counters only (its bundled Prometheus drops Envoy histograms).
    OsmEnvoy,
    /// Kuma's Envoy statistics.
    Kuma,
    /// Hubble HTTP metrics.
    Cilium,
}

impl From<Mesh> for View {
    fn from(m: Mesh) -> View {
        match m {
            Mesh::Linkerd => View::Linkerd,
            Mesh::Istio => View::Istio,
            Mesh::Consul => View::Consul,
            Mesh::Osm => View::Osm,
            Mesh::Kuma => View::Kuma,
            Mesh::Cilium => View::Cilium,
        }
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            View::OsmEnvoy => "osm-envoy",
            _ => self.mesh().name(),
        })
    }
}

/// Which proxy's observation a number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The serving side (server latency).
    Server,
    /// The calling side (client latency: server time plus network and proxies).
    Client,
}

const WORKLOADS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
];

impl View {
    /// The mesh whose dataset this view reads.
    pub fn mesh(self) -> Mesh {
        match self {
            View::Linkerd => Mesh::Linkerd,
            View::Istio => Mesh::Istio,
            View::Consul => Mesh::Consul,
            View::Osm | View::OsmEnvoy => Mesh::Osm,
            View::Kuma => Mesh::Kuma,
            View::Cilium => Mesh::Cilium,
        }
    }

    /// Kinds with resource metrics.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            View::Consul => &[Kind::Namespace, Kind::Pod, Kind::Service],
            View::Kuma => &[
                Kind::Namespace,
                Kind::Pod,
                Kind::Deployment,
                Kind::DaemonSet,
                Kind::StatefulSet,
                Kind::Job,
                Kind::Service,
            ],
            _ => &WORKLOADS,
        }
    }

    /// Kinds with edges.
    pub fn edge_kinds(self) -> &'static [Kind] {
        match self {
            View::Istio => &[
                Kind::Namespace,
                Kind::Deployment,
                Kind::DaemonSet,
                Kind::StatefulSet,
                Kind::Job,
            ],
            View::Consul | View::Kuma => &[Kind::Namespace, Kind::Service],
            View::OsmEnvoy => &[],
            _ => &WORKLOADS,
        }
    }

    /// Finite latency bucket bounds (ms); `None` when the data has no latency.
    pub fn buckets_ms(self) -> Option<&'static [f64]> {
        match self {
            View::Linkerd => Some(&crate::linkerd::LATENCY_BUCKETS_MS),
            View::Cilium => Some(&HUBBLE_BUCKETS_MS),
            View::OsmEnvoy => None,
            _ => Some(&ENVOY_BUCKETS_MS),
        }
    }

    /// Whether failing gRPC statuses are visible (else those responses count as successes).
    pub fn grpc_visible(self) -> bool {
        matches!(self, View::Linkerd | View::Istio)
    }

    /// Whether a reset (no response) is observed in the latency histogram: Envoy answers
    /// it with a 503 (Istio records `response_code="0"`) and times it; Linkerd does not.
    pub fn resets_observed(self) -> bool {
        self != View::Linkerd
    }

    /// Whether latencies are recorded in whole milliseconds (OSM's WASM filter truncates).
    pub fn whole_ms(self) -> bool {
        self == View::Osm
    }

    /// Who measures resource metrics.
    pub fn resource_side(self) -> Side {
        if self == View::Osm {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// Who measures `from` edges.
    pub fn from_side(self) -> Side {
        match self {
            View::Istio | View::Cilium => Side::Server,
            _ => Side::Client,
        }
    }

    /// Who measures the `to` edges of calls made by `src`.
    pub fn to_side(self, s: &Scenario, src: PodId) -> Side {
        if self.ambient(s, src) {
            Side::Server
        } else {
            Side::Client
        }
    }

    /// Whether edges may have an unmeshed peer (Cilium knows every pod's identity).
    pub(crate) fn unmeshed_peers(self) -> bool {
        self == View::Cilium
    }

    /// Whether the pod runs without a sidecar behind an ambient waypoint (Istio).
    pub(crate) fn ambient(self, s: &Scenario, pod: PodId) -> bool {
        self == View::Istio && s.owner(pod).namespace == AMBIENT_NAMESPACE
    }

    /// Whether a meshed pod has Pod metrics (an ambient pod's are reported by its waypoint).
    pub(crate) fn pod_visible(self, s: &Scenario, pod: PodId) -> bool {
        !self.ambient(s, pod)
    }

    /// The resource of `kind` containing `pod`, named the way the mesh names it.
    pub fn resource_of(self, s: &Scenario, pod: PodId, kind: Kind) -> Option<Res> {
        let mut r = s.resource_of(pod, kind)?;
        match self {
            View::Istio | View::Cilium if kind == Kind::Job => {
                r.name = workload_name(&r.name, kind)
            }
            View::Osm => {
                r.name = unsanitize(&r.name);
                r.namespace = r.namespace.as_deref().map(unsanitize);
            }
            _ => {}
        }
        Some(r)
    }
}

/// The workload name Istio and Hubble give a pod owner: a Job whose name ends in
/// `-<8 to 10 digits>` was made by a CronJob and is named after it.
pub(crate) fn workload_name(name: &str, kind: Kind) -> String {
    if kind == Kind::Job {
        if let Some((head, tail)) = name.rsplit_once('-') {
            if !head.is_empty()
                && (8..=10).contains(&tail.len())
                && tail.bytes().all(|b| b.is_ascii_digit())
            {
                return head.to_owned();
            }
        }
    }
    name.to_owned()
}

/// Envoy's stat-name sanitising (every character outside `[A-Za-z0-9_]` becomes `_`).
pub(crate) fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a sanitised Kubernetes name reads back as (`_` → `-`).
fn unsanitize(value: &str) -> String {
    sanitize(value).replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cronjob_jobs_are_named_after_the_cronjob() {
        assert_eq!(workload_name("report-28419360", Kind::Job), "report");
        assert_eq!(workload_name("report-1234567", Kind::Job), "report-1234567");
        assert_eq!(
            workload_name("report-28419360", Kind::Deployment),
            "report-28419360"
        );
        assert_eq!(
            workload_name("backup-12345678901", Kind::Job),
            "backup-12345678901"
        );
    }

    #[test]
    fn osm_names_lose_dots() {
        assert_eq!(sanitize("store.v1-abc"), "store_v1_abc");
        assert_eq!(unsanitize("store.v1"), "store-v1");
    }
}
