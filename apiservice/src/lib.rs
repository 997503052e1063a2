//! The Kubernetes side of mesh-metrics: everything about the SMI Traffic Metrics
//! API as seen on the wire.
//!
//! * [`request`]: path + query string → what is asked (validated names and window).
//! * [`wire`]: the `TrafficMetrics` / `TrafficMetricsList` JSON types.
//! * [`render`]: model answers → wire objects.
//! * [`quantity`]: Kubernetes quantity formatting (`296875m`, `1k`).
//! * [`discovery`]: static APIGroupList / APIGroup / APIResourceList.
//! * [`status`]: errors as Kubernetes `Status` objects.
//!
//! Nothing here knows about PromQL.

pub mod custom_metrics;
pub mod discovery;
pub mod label_selector;
pub mod openapi;
pub mod quantity;
pub mod render;
pub mod request;
pub mod status;
pub mod table;
pub mod wire;

/// The API group.
pub const GROUP: &str = "metrics.smi-spec.io";
/// The served version.
pub const VERSION: &str = "v1alpha1";
/// `group/version`.
pub const GROUP_VERSION: &str = "metrics.smi-spec.io/v1alpha1";
/// The path prefix of every TrafficMetrics resource.
pub const BASE_PATH: &str = "/apis/metrics.smi-spec.io/v1alpha1";
