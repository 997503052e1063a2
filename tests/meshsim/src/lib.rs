//! # meshsim: service-mesh traffic simulator with SMI ground truth
//!
//! meshsim simulates the HTTP/gRPC traffic of a multi-namespace Kubernetes application, step by
//! step ([`STEP_SECS`]), and produces:
//!
//! * a mesh's Prometheus dataset in OpenMetrics text with timestamps
//!   ([`Dataset::write_openmetrics`]), loadable with
//!   `promtool tsdb create-blocks-from openmetrics` (see [`PromServer`]);
//! * the SMI Traffic Metrics values expected for any resource, edge and window
//!   ([`Dataset::truth`]), computed directly from the simulated requests.
//!
//! The model is mesh-neutral (`topology`, `traffic`); each mesh has its own emitter (`linkerd`,
//! `istio`, `consul`, `osm`, `kuma`, `cilium`), writing that mesh's real series and labels for the
//! same traffic. What a mesh's data can and cannot tell (which side measures, gRPC statuses,
//! bucket layouts, names) is described once, in [`View`], and the truth follows it.
//!
//! ## Time
//! Step `k` (1-based) happens at `start + k * STEP_SECS`; its requests are counted in the sample
//! stamped with that time. Every series has a sample at every step from `start` (all zero) to
//! `end`, so `increase(x[W])` at an aligned `end` is exactly `x(end) - x(end - W)` (allowing for
//! counter resets). Traffic depends only on the step index, not on the absolute time: datasets with
//! the same length contain the same traffic, shifted.
//!
//! ## Semantics of the truth
//! See [`Truth`] and [`View`]. In short: resources are measured server side (including unmeshed
//! callers) except by OSM's client-side WASM statistics; edges are between meshed pods, with a peer
//! of the same kind as the queried resource; latency quantiles are what `histogram_quantile`
//! returns on the window's bucket increments, in the mesh's bucket layout.
//!
//! ## The demo's traps
//! See [`Scenario::demo`]: a `store.v1` and a `store-v1` Deployment (unescaped regex), a StatefulSet
//! pod restart (counter reset), a DaemonSet, a Job (`k8s_job` label, plus a decoy `job_name`), an
//! unmeshed namespace calling in, calls to an unmeshed workload and to an external host, clients
//! outside the cluster, a cross-namespace edge, a self edge, a failing edge (5xx and stream
//! resets), gRPC statuses that succeed and fail, 4xx that succeed, an idle workload, calls by pod
//! IP (no `dst_service`), and calls crossing kinds (Deployment → StatefulSet, DaemonSet, Job).
//! Each emitter adds its mesh's own: Istio's two reporters, `unknown` peers, `response_code="0"`,
//! `response_flags`, an ambient namespace behind a waypoint, CronJob naming; Consul's `local_app`
//! and passthrough clusters; OSM's `_`-mangled names (`store.v1` and `store-v1` collide) and whole
//! milliseconds; Kuma's counters with and without `_total`; Hubble's seconds buckets, both
//! reporters and node-agent series.

#![warn(missing_docs)]

mod cilium;
mod consul;
mod demo;
mod emit;
mod exit_guard;
mod istio;
mod kuma;
mod linkerd;
mod openmetrics;
mod osm;
mod prom;
mod quantile;
mod rng;
mod scaled;
mod topology;
mod traffic;
mod truth;
mod view;

use std::fmt;
use std::io;
use std::str::FromStr;

pub use prom::{PromServer, Sample, WebConfig};
pub use topology::{Kind, Res, Scenario};
pub use truth::{Direction, Expected, ExpectedEdge, Truth};
pub use view::{Side, View};

use traffic::Traffic;

/// Scrape interval in seconds; every timestamp in a dataset is a multiple of it.
pub const STEP_SECS: i64 = 10;

/// A service mesh whose metrics a dataset can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mesh {
    /// Linkerd 2.x proxy metrics as scraped by linkerd-viz.
    Linkerd,
    /// Istio standard metrics from sidecars (both reporters) and an ambient waypoint.
    Istio,
    /// Consul service mesh: Envoy statistics with Consul's tags.
    Consul,
    /// Open Service Mesh: WASM statistics plus Envoy counters, as OSM's Prometheus keeps them.
    Osm,
    /// Kuma: Envoy cluster statistics, some data planes exporting `_total` counters.
    Kuma,
    /// Cilium: Hubble HTTP metrics (httpV2) from every node's agent.
    Cilium,
}

impl Mesh {
    /// Every supported mesh.
    pub const ALL: [Mesh; 6] = [
        Mesh::Linkerd,
        Mesh::Istio,
        Mesh::Consul,
        Mesh::Osm,
        Mesh::Kuma,
        Mesh::Cilium,
    ];

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mesh::Linkerd => "linkerd",
            Mesh::Istio => "istio",
            Mesh::Consul => "consul",
            Mesh::Osm => "osm",
            Mesh::Kuma => "kuma",
            Mesh::Cilium => "cilium",
        }
    }
}

impl fmt::Display for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mesh {
    type Err = String;

    fn from_str(s: &str) -> Result<Mesh, String> {
        Mesh::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<&str> = Mesh::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mesh {s:?} (known: {})", known.join(", "))
            })
    }
}

/// Simulated traffic of a scenario over a time range.
#[derive(Debug, Clone)]
pub struct Dataset {
    scenario: Scenario,
    start: i64,
    end: i64,
    traffic: Traffic,
}

impl Dataset {
    /// Simulates `scenario` at every step in `(start, end]` (unix seconds).
    ///
    /// # Panics
    /// If `start` or `end` is not a multiple of [`STEP_SECS`], or `end < start`.
    pub fn generate(scenario: &Scenario, start: i64, end: i64) -> Dataset {
        assert!(
            start % STEP_SECS == 0 && end % STEP_SECS == 0 && end >= start,
            "start ({start}) and end ({end}) must be multiples of {STEP_SECS} with start <= end"
        );
        let steps = ((end - start) / STEP_SECS) as usize;
        Dataset {
            scenario: scenario.clone(),
            start,
            end,
            traffic: Traffic::simulate(scenario, steps),
        }
    }

    /// First timestamp (unix seconds): every series is 0 here.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Last timestamp (unix seconds).
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Writes the dataset as `mesh`'s Prometheus series, OpenMetrics text terminated by `# EOF`.
    /// Wrap `out` in a `BufWriter`: the output is written in many small pieces.
    pub fn write_openmetrics(&self, mesh: Mesh, out: &mut dyn io::Write) -> io::Result<()> {
        match mesh {
            Mesh::Linkerd => linkerd::write(self, out),
            Mesh::Istio => istio::write(self, out),
            Mesh::Consul => consul::write(self, out),
            Mesh::Osm => osm::write(self, out),
            Mesh::Kuma => kuma::write(self, out),
            Mesh::Cilium => cilium::write(self, out),
        }
    }

    /// The expected SMI values as a mesh's data shows them: `dataset.truth(Mesh::Istio)`, or
    /// `dataset.truth(View::OsmEnvoy)` for a second reading of one mesh's data.
    pub fn truth(&self, view: impl Into<View>) -> Truth<'_> {
        Truth::new(self, view.into())
    }

    /// The simulated application.
    pub(crate) fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulated requests.
    pub(crate) fn traffic(&self) -> &Traffic {
        &self.traffic
    }
}
