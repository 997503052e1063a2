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
//! The model is mesh-neutral (`topology`, `traffic`); each mesh has its own emitter (`linkerd`).
//!
//! ## Time
//! Step `k` (1-based) happens at `start + k * STEP_SECS`; its requests are counted in the sample
//! stamped with that time. Every series has a sample at every step from `start` (all zero) to
//! `end`, so `increase(x[W])` at an aligned `end` is exactly `x(end) - x(end - W)` (allowing for
//! counter resets). Traffic depends only on the step index, not on the absolute time: datasets with
//! the same length contain the same traffic, shifted.
//!
//! ## Semantics of the truth
//! See [`Truth`]. In short: resources are measured server side (including unmeshed callers);
//! edges client side, between meshed pods, with a peer of the same kind as the queried resource;
//! latency quantiles are what `histogram_quantile` returns on the window's bucket increments.
//!
//! ## The demo's traps
//! See [`Scenario::demo`]: a `store.v1` and a `store-v1` Deployment (unescaped regex), a StatefulSet
//! pod restart (counter reset), a DaemonSet, a Job (`k8s_job` label, plus a decoy `job_name`), an
//! unmeshed namespace calling in, calls to an unmeshed workload and to an external host, clients
//! outside the cluster, a cross-namespace edge, a self edge, a failing edge (5xx and stream
//! resets), gRPC statuses that succeed and fail, 4xx that succeed, an idle workload, calls by pod
//! IP (no `dst_service`), and calls crossing kinds (Deployment → StatefulSet, DaemonSet, Job).

#![warn(missing_docs)]

mod demo;
mod linkerd;
mod openmetrics;
mod prom;
mod quantile;
mod rng;
mod topology;
mod traffic;
mod truth;

use std::fmt;
use std::io;
use std::str::FromStr;

pub use prom::{PromServer, Sample};
pub use topology::{Kind, Res, Scenario};
pub use truth::{Direction, Expected, ExpectedEdge, Truth};

use traffic::Traffic;

/// Scrape interval in seconds; every timestamp in a dataset is a multiple of it.
pub const STEP_SECS: i64 = 10;

/// A service mesh whose metrics a dataset can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mesh {
    /// Linkerd 2.x proxy metrics as scraped by linkerd-viz.
    Linkerd,
}

impl Mesh {
    /// Every supported mesh.
    pub const ALL: [Mesh; 1] = [Mesh::Linkerd];

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mesh::Linkerd => "linkerd",
        }
    }

    /// Finite upper bounds (ms) of the mesh's latency histogram buckets.
    pub(crate) fn latency_buckets_ms(self) -> &'static [f64] {
        match self {
            Mesh::Linkerd => &linkerd::LATENCY_BUCKETS_MS,
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
            .ok_or_else(|| format!("unknown mesh {s:?} (known: linkerd)"))
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
        }
    }

    /// The expected SMI values, with `mesh`'s latency bucket layout.
    pub fn truth(&self, mesh: Mesh) -> Truth<'_> {
        Truth::new(self, mesh)
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
