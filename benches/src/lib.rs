//! The mesh-metrics benchmark suite (run it with `scripts/bench`; see `BENCHMARKS.md`).
//!
//! * [`dataset`]: scaled simulated meshes written as Linkerd series.
//! * [`prom`]: a real Prometheus on loopback holding them.
//! * [`plans`]: the PromQL of mesh-metrics' plan and of the reference implementation's.
//! * [`load`]: the load generator's engine (the `mesh-metrics-load` binary).
//! * [`ceiling`]: the trivial handler the hit path is compared with; [`proxy`]: the
//!   zero-work server the miss path is compared with; both serve through [`https`].
//! * [`runner`]: one benchmark run, scale by scale; [`report`]: its tables.
//! * [`stats`], [`procstat`]: latency percentiles, CPU time and memory of processes.

pub mod ceiling;
pub mod dataset;
pub mod https;
pub mod load;
pub mod plans;
pub mod procstat;
pub mod prom;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod stats;
