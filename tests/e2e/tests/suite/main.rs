//! End-to-end tests against a real Prometheus, the real server and real kubectl.
//! One binary, so one simulated dataset serves every test, written once per mesh into
//! that mesh's own Prometheus (see `e2e::env_for`).

mod api;
mod backends;
mod cilium;
mod consul;
mod cross_mesh;
mod grafana;
mod hpa;
mod istio;
mod kubectl;
mod kuma;
mod linkerd;
mod osm;
mod smi;
