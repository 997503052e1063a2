//! The data side of mesh-metrics.
//!
//! * [`model`]: the mesh-neutral question ([`model::StatsQuery`]) and answer
//!   ([`model::StatsResult`]).
//! * [`prometheus`]: the Prometheus HTTP API client and the [`prometheus::Executor`]
//!   trait that caching layers implement.
//! * [`mesh`]: the [`mesh::Mesh`] trait: a mesh turns a question into a plan of PromQL
//!   queries and classifies answers; one module per mesh ([`linkerd`], ...).
//! * [`engine`]: runs a plan concurrently and folds vectors into the model.
//! * [`histogram`], [`promql`], [`duration`]: small shared helpers.
//!
//! Nothing here knows about HTTP serving or Kubernetes JSON.

pub mod duration;
pub mod engine;
pub mod histogram;
pub mod linkerd;
pub mod mesh;
pub mod model;
pub mod prometheus;
pub mod promql;
