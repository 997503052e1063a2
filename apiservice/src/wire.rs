//! The SMI Traffic Metrics v1alpha1 JSON objects, with fields in the order the Go
//! SDK emits them (clients have matched that order with regexes).

use serde::{Deserialize, Serialize};

/// `metadata` of a TrafficMetrics object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name of the described object.
    pub name: String,
    /// Its namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The path this object is served at.
    pub self_link: String,
    /// When the object was built: the end of the window (RFC3339, seconds, UTC).
    pub creation_timestamp: String,
}

/// `metadata` of a TrafficMetricsList.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The path this list is served at.
    pub self_link: String,
}

/// A reference to the measured object or a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectReference {
    /// The SDK kind string (`Deployment`, `Daemonset`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace, absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The edge an object's metrics are scoped to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// `to` (the resource called the peer) or `from` (the peer called the resource).
    pub direction: String,
    /// The peer; `null` for resource-level metrics.
    pub resource: Option<ObjectReference>,
}

/// One of the five SMI metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// `p99_response_latency`, `p90_response_latency`, `p50_response_latency`,
    /// `success_count` or `failure_count`.
    pub name: String,
    /// `ms` for latencies; absent for counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A Kubernetes quantity. Absent on a latency metric when no request completed
    /// in the window (there is no latency to report, and `0` would be a lie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `TrafficMetrics`: the traffic of one object, or of one edge, in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetrics {
    /// Always `TrafficMetrics`.
    pub kind: String,
    /// Always `metrics.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// End of the window (RFC3339).
    pub timestamp: String,
    /// Length of the window (Go duration, `30s`, `1m0s`).
    pub window: String,
    /// The measured object.
    pub resource: ObjectReference,
    /// Edge scope.
    pub edge: Edge,
    /// The five metrics, in SMI order.
    pub metrics: Vec<Metric>,
}

/// `TrafficMetricsList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficMetricsList {
    /// Always `TrafficMetricsList`.
    pub kind: String,
    /// Always `metrics.smi-spec.io/v1alpha1`.
    pub api_version: String,
    /// List metadata.
    pub metadata: ListMeta,
    /// What was asked: kind, plus namespace and name where given.
    pub resource: ObjectReference,
    /// The items, sorted; `[]` when empty, never `null`.
    pub items: Vec<TrafficMetrics>,
}
