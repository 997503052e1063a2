//! The custom metrics API (`custom.metrics.k8s.io`, v1beta2 and v1beta1) that the
//! HorizontalPodAutoscaler reads: SMI numbers as per-object metrics.
//!
//! Metrics (server side of each object, over the default window):
//!
//! | name | unit | meaning |
//! | --- | --- | --- |
//! | `smi_requests_per_second` | 1/s | responses per second |
//! | `smi_success_rate` | ratio 0–1 | share of responses that succeeded |
//! | `smi_failure_rate` | ratio 0–1 | share of responses that failed |
//! | `smi_p50_response_latency_ms`, `smi_p90_…`, `smi_p99_…` | ms | latency percentiles |
//!
//! `metricLabelSelector=direction=from` (or `to`, optionally with `peer_namespace`
//! and `peer_name`) measures edges instead: the traffic from (or to) the matching peers.

use std::collections::BTreeMap;

use adapters::model::{Direction, EdgeStats, Kind, ResourceRef, TrafficStats, UnixMillis};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};
use serde::Serialize;
use serde_json::{json, Value};

use crate::label_selector::Selector;
use crate::quantity::format_milli;
use crate::render::rfc3339;
use crate::request::{namespace_name, object_name};
use crate::status::ApiError;

/// The API group.
pub const GROUP: &str = "custom.metrics.k8s.io";

/// A served version of the custom metrics API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `v1beta2` (current HPA controllers).
    V1Beta2,
    /// `v1beta1` (older controllers).
    V1Beta1,
}

impl Version {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1Beta2 => "v1beta2",
            Version::V1Beta1 => "v1beta1",
        }
    }

    /// The path prefix of this version.
    pub fn base(self) -> String {
        format!("/apis/{GROUP}/{}", self.as_str())
    }
}

/// One metric the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Responses per second.
    RequestsPerSecond,
    /// Successful share of responses (0–1).
    SuccessRate,
    /// Failed share of responses (0–1).
    FailureRate,
    /// Median latency in ms.
    P50,
    /// 90th percentile latency in ms.
    P90,
    /// 99th percentile latency in ms.
    P99,
}

impl Metric {
    /// Every metric, in discovery order.
    pub const ALL: [Metric; 6] = [
        Metric::RequestsPerSecond,
        Metric::SuccessRate,
        Metric::FailureRate,
        Metric::P50,
        Metric::P90,
        Metric::P99,
    ];

    /// The metric's name in paths.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestsPerSecond => "smi_requests_per_second",
            Metric::SuccessRate => "smi_success_rate",
            Metric::FailureRate => "smi_failure_rate",
            Metric::P50 => "smi_p50_response_latency_ms",
            Metric::P90 => "smi_p90_response_latency_ms",
            Metric::P99 => "smi_p99_response_latency_ms",
        }
    }

    fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The metric's value for `stats` over `window_secs`; `None` when it has no value
    /// (rates without responses, latency without observations).
    pub fn value(self, stats: &TrafficStats, window_secs: f64) -> Option<f64> {
        let total = stats.success + stats.failure;
        match self {
            Metric::RequestsPerSecond => Some(if window_secs > 0.0 {
                total / window_secs
            } else {
                0.0
            }),
            Metric::SuccessRate => (total > 0.0).then(|| stats.success / total),
            Metric::FailureRate => (total > 0.0).then(|| stats.failure / total),
            Metric::P50 => stats.latency.map(|l| l.p50),
            Metric::P90 => stats.latency.map(|l| l.p90),
            Metric::P99 => stats.latency.map(|l| l.p99),
        }
    }
}

/// The resources metrics are served for, as the HPA names them.
const RESOURCES: [(&str, Kind, &str, &str); 5] = [
    ("pods", Kind::Pod, "Pod", "v1"),
    (
        "deployments.apps",
        Kind::Deployment,
        "Deployment",
        "apps/v1",
    ),
    (
        "statefulsets.apps",
        Kind::StatefulSet,
        "StatefulSet",
        "apps/v1",
    ),
    ("daemonsets.apps", Kind::DaemonSet, "DaemonSet", "apps/v1"),
    ("jobs.batch", Kind::Job, "Job", "batch/v1"),
];

fn resource_of(name: &str) -> Option<Kind> {
    RESOURCES.iter().find(|r| r.0 == name).map(|r| r.1)
}

fn described(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Namespace => ("Namespace", "v1"),
        _ => RESOURCES
            .iter()
            .find(|r| r.1 == kind)
            .map(|r| (r.2, r.3))
            .unwrap_or(("", "")),
    }
}

/// Which objects a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objects {
    /// One named object (or a namespace).
    One(ResourceRef),
    /// Every object of `kind` in `namespace` matching the label selector (`*`).
    Selected {
        /// The kind.
        kind: Kind,
        /// The namespace.
        namespace: String,
        /// The `labelSelector` (empty selects all).
        selector: Selector,
    },
}

/// Edge scope from `metricLabelSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeFilter {
    /// `direction`: from or to.
    pub direction: Option<Direction>,
    /// `peer_namespace`.
    pub peer_namespace: Option<String>,
    /// `peer_name`.
    pub peer_name: Option<String>,
    /// The raw selector, echoed in answers.
    pub raw: String,
}

impl EdgeFilter {
    /// Whether an edge matches.
    pub fn matches(&self, e: &EdgeStats) -> bool {
        self.direction.is_none_or(|d| d == e.direction)
            && self
                .peer_namespace
                .as_ref()
                .is_none_or(|ns| e.peer.namespace.as_deref().unwrap_or(&e.peer.name) == ns)
            && self.peer_name.as_ref().is_none_or(|n| &e.peer.name == n)
    }
}

/// A parsed custom metrics request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomRequest {
    /// `GET /apis/custom.metrics.k8s.io/<v>`: discovery.
    Discovery(Version),
    /// A metric of some objects.
    Metric {
        /// The API version (decides the answer's shape).
        version: Version,
        /// The objects.
        objects: Objects,
        /// The metric.
        metric: Metric,
        /// Edge scope (`metricLabelSelector`), if any.
        edges: Option<EdgeFilter>,
    },
}

/// Parses a path under `/apis/custom.metrics.k8s.io/` (None: not this API).
pub fn parse(
    path: &str,
    query: Option<&str>,
    enabled: &[Version],
) -> Option<Result<CustomRequest, ApiError>> {
    let rest = path.strip_prefix(&format!("/apis/{GROUP}/"))?;
    let rest = rest.trim_end_matches('/');
    let (v, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let version = enabled.iter().copied().find(|e| e.as_str() == v)?;
    if rest.is_empty() {
        return Some(Ok(CustomRequest::Discovery(version)));
    }
    Some(parse_metric(version, rest, query))
}

fn param(query: Option<&str>, name: &str) -> Option<String> {
    query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn unknown_metric(metric: &str, what: &str) -> ApiError {
    let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    ApiError::not_found(format!(
        "the server could not find the metric {metric} for {what}; served metrics: {}",
        known.join(", ")
    ))
}

fn parse_metric(
    version: Version,
    rest: &str,
    query: Option<&str>,
) -> Result<CustomRequest, ApiError> {
    let segs: Vec<&str> = rest.split('/').collect();
    let (objects, metric_name, what) = match segs.as_slice() {
        ["namespaces", ns, "metrics", metric] => (
            Objects::One(ResourceRef::namespace(namespace_name(ns)?)),
            *metric,
            format!("namespaces {ns}"),
        ),
        ["namespaces", ns, resource, name, metric] => {
            let kind = resource_of(resource).ok_or_else(|| {
                let known: Vec<&str> = RESOURCES.iter().map(|r| r.0).collect();
                ApiError::not_found(format!(
                    "the server could not find metrics for resource {resource:?}; served: {}, and namespaces",
                    known.join(", ")
                ))
            })?;
            let ns = namespace_name(ns)?;
            let objects = if *name == "*" {
                Objects::Selected {
                    kind,
                    namespace: ns,
                    selector: Selector::parse(&param(query, "labelSelector").unwrap_or_default())?,
                }
            } else {
                Objects::One(ResourceRef::namespaced(kind, ns, object_name(name)?))
            };
            (objects, *metric, format!("{resource} {name}"))
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "the server could not find the requested resource {rest:?} in {GROUP}; use namespaces/<ns>/<resource>/<name|*>/<metric> or namespaces/<ns>/metrics/<metric>"
            )))
        }
    };
    let metric =
        Metric::from_name(metric_name).ok_or_else(|| unknown_metric(metric_name, &what))?;
    let edges = param(query, "metricLabelSelector")
        .filter(|s| !s.is_empty())
        .map(|raw| edge_filter(&raw))
        .transpose()?;
    Ok(CustomRequest::Metric {
        version,
        objects,
        metric,
        edges,
    })
}

fn edge_filter(raw: &str) -> Result<EdgeFilter, ApiError> {
    let mut f = EdgeFilter {
        raw: raw.to_string(),
        ..Default::default()
    };
    for term in raw.split(',').map(str::trim) {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('=')).ok_or_else(|| {
            ApiError::bad_request(format!(
                "metricLabelSelector term {term:?}: only equality terms are supported (direction=from|to, peer_namespace=<ns>, peer_name=<name>)"
            ))
        })?;
        match k.trim() {
            "direction" => {
                f.direction = Some(match v.trim() {
                    "from" => Direction::From,
                    "to" => Direction::To,
                    other => return Err(ApiError::bad_request(format!("metricLabelSelector direction {other:?}: use from or to"))),
                })
            }
            "peer_namespace" => f.peer_namespace = Some(v.trim().to_string()),
            "peer_name" => f.peer_name = Some(v.trim().to_string()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "metricLabelSelector label {other:?} is not served; use direction, peer_namespace, peer_name"
                )))
            }
        }
    }
    Ok(f)
}

/// `GET /apis/custom.metrics.k8s.io/<v>`: one entry per resource and metric.
pub fn discovery(version: Version) -> APIResourceList {
    let mut resources = Vec::new();
    for m in Metric::ALL {
        for (name, namespaced) in RESOURCES
            .iter()
            .map(|r| (r.0, true))
            .chain(std::iter::once(("namespaces", false)))
        {
            resources.push(APIResource {
                name: format!("{name}/{}", m.name()),
                singular_name: String::new(),
                namespaced,
                kind: "MetricValueList".into(),
                verbs: vec!["get".into()],
                ..Default::default()
            });
        }
    }
    APIResourceList {
        group_version: format!("{GROUP}/{}", version.as_str()),
        resources,
    }
}

/// One object's value of the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Value1 {
    /// The object.
    pub object: ResourceRef,
    /// The value; objects without a value are left out of answers.
    pub value: f64,
}

#[derive(Serialize)]
struct List {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: BTreeMap<String, String>,
    items: Vec<Value>,
}

/// Renders a `MetricValueList` for `version`.
pub fn render(
    version: Version,
    metric: Metric,
    edges: Option<&EdgeFilter>,
    values: &[Value1],
    at: UnixMillis,
    window_secs: i64,
) -> Vec<u8> {
    let items = values
        .iter()
        .filter_map(|v| {
            let value = format_milli(v.value)?;
            let (kind, api_version) = described(v.object.kind);
            let mut described = json!({"kind": kind, "name": v.object.name, "apiVersion": api_version});
            if let Some(ns) = &v.object.namespace {
                described["namespace"] = Value::from(ns.as_str());
            }
            let selector = edges.map(|e| selector(&e.raw));
            Some(match version {
                Version::V1Beta2 => {
                    let mut m = json!({"name": metric.name()});
                    if let Some(s) = selector {
                        m["selector"] = s;
                    }
                    json!({"describedObject": described, "metric": m, "timestamp": rfc3339(at), "windowSeconds": window_secs, "value": value})
                }
                Version::V1Beta1 => {
                    let mut o = json!({"describedObject": described, "metricName": metric.name(), "timestamp": rfc3339(at), "windowSeconds": window_secs, "value": value});
                    if let Some(s) = selector {
                        o["selector"] = s;
                    }
                    o
                }
            })
        })
        .collect();
    serde_json::to_vec(&List {
        kind: "MetricValueList",
        api_version: format!("{GROUP}/{}", version.as_str()),
        metadata: BTreeMap::new(),
        items,
    })
    .unwrap_or_default()
}

/// A `LabelSelector` object for an equality selector string.
fn selector(raw: &str) -> Value {
    let labels: BTreeMap<&str, &str> = raw
        .split(',')
        .filter_map(|t| t.split_once("==").or_else(|| t.split_once('=')))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    json!({"matchLabels": labels})
}

/// Sums the traffic of the edges that `filter` selects (latency only when exactly
/// one edge matches, since percentiles cannot be added).
pub fn edge_stats(edges: &[EdgeStats], filter: &EdgeFilter) -> TrafficStats {
    let matching: Vec<&EdgeStats> = edges.iter().filter(|e| filter.matches(e)).collect();
    TrafficStats {
        success: matching.iter().map(|e| e.stats.success).sum(),
        failure: matching.iter().map(|e| e.stats.failure).sum(),
        latency: match matching.as_slice() {
            [one] => one.stats.latency,
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adapters::model::Latency;

    const BOTH: [Version; 2] = [Version::V1Beta2, Version::V1Beta1];

    fn metric(path: &str, q: Option<&str>) -> Result<CustomRequest, ApiError> {
        parse(path, q, &BOTH).expect("custom metrics path")
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse("/apis/metrics.smi-spec.io/v1alpha1", None, &BOTH),
            None
        );
        assert_eq!(
            parse(
                "/apis/custom.metrics.k8s.io/v1beta2",
                None,
                &[Version::V1Beta1]
            ),
            None,
            "disabled"
        );
        assert_eq!(
            metric("/apis/custom.metrics.k8s.io/v1beta1/", None).unwrap(),
            CustomRequest::Discovery(Version::V1Beta1)
        );
        assert_eq!(
            metric("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/web/smi_requests_per_second", None).unwrap(),
            CustomRequest::Metric {
                version: Version::V1Beta2,
                objects: Objects::One(ResourceRef::namespaced(Kind::Deployment, "shop", "web")),
                metric: Metric::RequestsPerSecond,
                edges: None,
            }
        );
        let CustomRequest::Metric { objects, edges, .. } = metric(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/smi_success_rate",
            Some("labelSelector=app%3Dweb&metricLabelSelector=direction%3Dfrom,peer_name%3Dapi"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            objects,
            Objects::Selected {
                kind: Kind::Pod,
                namespace: "shop".into(),
                selector: Selector::parse("app=web").unwrap()
            }
        );
        let e = edges.unwrap();
        assert_eq!(
            (e.direction, e.peer_name.as_deref()),
            (Some(Direction::From), Some("api"))
        );
        assert_eq!(
            metric("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/metrics/smi_p99_response_latency_ms", None).unwrap(),
            CustomRequest::Metric {
                version: Version::V1Beta2,
                objects: Objects::One(ResourceRef::namespace("shop")),
                metric: Metric::P99,
                edges: None,
            }
        );
    }

    #[test]
    fn bad_requests() {
        let e = metric("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/web/http_requests", None).unwrap_err();
        assert_eq!(e.code, 404);
        assert!(
            e.message
                .contains("could not find the metric http_requests"),
            "{}",
            e.message
        );
        assert_eq!(
            metric(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/services/web/smi_success_rate",
                None
            )
            .unwrap_err()
            .code,
            404
        );
        assert_eq!(
            metric(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/Shop/pods/x/smi_success_rate",
                None
            )
            .unwrap_err()
            .code,
            400
        );
        let sel = metric(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/x/smi_success_rate",
            Some("metricLabelSelector=direction%20in%20(from)"),
        )
        .unwrap_err();
        assert_eq!(sel.code, 400);
    }

    #[test]
    fn values() {
        let s = TrafficStats {
            success: 297.0,
            failure: 3.0,
            latency: Some(Latency {
                p50: 2.5,
                p90: 9.0,
                p99: 12.5,
            }),
        };
        assert_eq!(Metric::RequestsPerSecond.value(&s, 30.0), Some(10.0));
        assert_eq!(Metric::SuccessRate.value(&s, 30.0), Some(0.99));
        assert_eq!(Metric::FailureRate.value(&s, 30.0), Some(0.01));
        assert_eq!(Metric::P99.value(&s, 30.0), Some(12.5));
        let idle = TrafficStats::default();
        assert_eq!(Metric::RequestsPerSecond.value(&idle, 30.0), Some(0.0));
        assert_eq!(Metric::SuccessRate.value(&idle, 30.0), None);
        assert_eq!(Metric::P50.value(&idle, 30.0), None);
    }

    #[test]
    fn value_list_shapes() {
        let v = [Value1 {
            object: ResourceRef::namespaced(Kind::Deployment, "shop", "web"),
            value: 10.5,
        }];
        let at = UnixMillis(1_704_067_200_000);
        let b2: Value = serde_json::from_slice(&render(
            Version::V1Beta2,
            Metric::RequestsPerSecond,
            None,
            &v,
            at,
            30,
        ))
        .unwrap();
        assert_eq!(b2["kind"], "MetricValueList");
        assert_eq!(b2["apiVersion"], "custom.metrics.k8s.io/v1beta2");
        assert_eq!(
            b2["items"][0],
            json!({"describedObject": {"kind": "Deployment", "namespace": "shop", "name": "web", "apiVersion": "apps/v1"},
                   "metric": {"name": "smi_requests_per_second"}, "timestamp": "2024-01-01T00:00:00Z", "windowSeconds": 30, "value": "10500m"})
        );
        let f = edge_filter("direction=from").unwrap();
        let b1: Value = serde_json::from_slice(&render(
            Version::V1Beta1,
            Metric::RequestsPerSecond,
            Some(&f),
            &v,
            at,
            30,
        ))
        .unwrap();
        assert_eq!(b1["items"][0]["metricName"], "smi_requests_per_second");
        assert_eq!(
            b1["items"][0]["selector"],
            json!({"matchLabels": {"direction": "from"}})
        );
        let d = serde_json::to_value(discovery(Version::V1Beta2)).unwrap();
        assert_eq!(d["groupVersion"], "custom.metrics.k8s.io/v1beta2");
        assert!(d["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments.apps/smi_requests_per_second"));
        assert!(d["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "namespaces/smi_success_rate" && r["namespaced"] == false));
    }

    #[test]
    fn edge_sums() {
        let e = |dir, peer: &str, s: f64| EdgeStats {
            resource: ResourceRef::namespaced(Kind::Deployment, "shop", "api"),
            direction: dir,
            peer: ResourceRef::namespaced(Kind::Deployment, "shop", peer),
            stats: TrafficStats {
                success: s,
                failure: 1.0,
                latency: Some(Latency {
                    p50: 1.0,
                    p90: 2.0,
                    p99: 3.0,
                }),
            },
        };
        let edges = [
            e(Direction::From, "web", 10.0),
            e(Direction::From, "job", 5.0),
            e(Direction::To, "db", 7.0),
        ];
        let from = edge_stats(&edges, &edge_filter("direction=from").unwrap());
        assert_eq!(
            (from.success, from.failure, from.latency),
            (15.0, 2.0, None)
        );
        let web = edge_stats(
            &edges,
            &edge_filter("direction=from,peer_name=web").unwrap(),
        );
        assert_eq!(web.success, 10.0);
        assert!(web.latency.is_some());
    }
}
