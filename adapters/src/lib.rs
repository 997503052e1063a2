//! The data side of mesh-metrics.
//!
//! * [`model`]: the mesh-neutral question ([`model::StatsQuery`]) and answer
//!   ([`model::StatsResult`]).
//! * [`prometheus`]: the Prometheus HTTP API client and the [`prometheus::Executor`]
//!   trait that caching layers implement.
//! * [`mesh`]: the [`mesh::Mesh`] trait: a mesh turns a question into a plan of PromQL
//!   queries and classifies answers, and the one SMI success rule. One module per mesh:
//!   [`linkerd`], [`istio`], [`consul`], [`osm`], [`kuma`], [`cilium`] (what each
//!   supports: `docs/meshes.md`).
//! * [`engine`]: runs a plan concurrently and folds vectors into the model.
//! * [`codec`] (names mangled into label values), [`workloads`] (kinds for kind-less
//!   workload names), [`histogram`], [`promql`], [`duration`]: shared helpers.
//!
//! Nothing here knows about HTTP serving or Kubernetes JSON.

pub mod cilium;
pub mod codec;
pub mod consul;
pub mod duration;
pub mod engine;
pub mod histogram;
pub mod istio;
pub mod kuma;
pub mod linkerd;
pub mod mesh;
pub mod model;
pub mod osm;
pub mod prometheus;
pub mod promql;
pub mod workloads;
