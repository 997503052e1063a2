//! End-to-end tests against a real Prometheus, the real server and real kubectl.
//! One binary, so one simulated dataset and one Prometheus serve every test.

mod api;
mod kubectl;
mod linkerd;
