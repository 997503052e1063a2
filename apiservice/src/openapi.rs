//! OpenAPI documents for our types, so `kubectl explain trafficmetrics` works and
//! kube-apiserver can merge our schema: `/openapi/v2` (Swagger 2.0), `/openapi/v3`
//! (the index) and `/openapi/v3/apis/metrics.smi-spec.io/v1alpha1` (OpenAPI 3.0).

use std::hash::{Hash, Hasher};

use adapters::model::Kind;
use serde_json::{json, Value};

use crate::discovery::resource_kind;
use crate::request::TRAFFICMETRICS;
use crate::{GROUP, VERSION};

/// Path of the v3 document of our group-version.
pub const V3_GROUP_PATH: &str = "/openapi/v3/apis/metrics.smi-spec.io/v1alpha1";

const PREFIX: &str = "io.smi-spec.metrics.v1alpha1";

fn gvk(kind: &str) -> Value {
    json!({"group": GROUP, "version": VERSION, "kind": kind})
}

fn definitions(reference: &str) -> Value {
    let r = |name: &str| json!({"$ref": format!("{reference}{PREFIX}.{name}")});
    let s = |description: &str| json!({"type": "string", "description": description});
    let mut kinds = vec![gvk("TrafficMetrics")];
    kinds.extend(Kind::ALL.iter().map(|k| gvk(resource_kind(*k))));
    json!({
        format!("{PREFIX}.TrafficMetrics"): {
            "description": "TrafficMetrics: the traffic of one object (or of one edge between two objects) in a window, measured from the service mesh's Prometheus. Read-only; computed on request.",
            "type": "object",
            "required": ["kind", "apiVersion", "metadata", "timestamp", "window", "resource", "edge", "metrics"],
            "properties": {
                "kind": s("Always TrafficMetrics."),
                "apiVersion": s("Always metrics.smi-spec.io/v1alpha1."),
                "metadata": r("ObjectMeta"),
                "timestamp": {"type": "string", "format": "date-time", "description": "End of the window (RFC3339)."},
                "window": s("Length of the window as a Go duration (30s, 1m0s). Set with ?t=."),
                "resource": r("ObjectReference"),
                "edge": r("Edge"),
                "metrics": {"type": "array", "items": r("Metric"), "description": "Exactly five metrics: p99_response_latency, p90_response_latency, p50_response_latency (unit ms), success_count, failure_count."},
            },
            "x-kubernetes-group-version-kind": kinds,
        },
        format!("{PREFIX}.TrafficMetricsList"): {
            "description": "A list of TrafficMetrics: the objects of a kind, or the edges of one object.",
            "type": "object",
            "required": ["kind", "apiVersion", "items"],
            "properties": {
                "kind": s("Always TrafficMetricsList."),
                "apiVersion": s("Always metrics.smi-spec.io/v1alpha1."),
                "metadata": {"type": "object", "properties": {"selfLink": s("The path the list was served at.")}},
                "resource": r("ObjectReference"),
                "items": {"type": "array", "items": r("TrafficMetrics")},
            },
            "x-kubernetes-group-version-kind": [gvk("TrafficMetricsList")],
        },
        format!("{PREFIX}.ObjectMeta"): {
            "description": "Identity of the measured object.",
            "type": "object",
            "properties": {
                "name": s("Name of the object; <kind>-<name> in the trafficmetrics resource."),
                "namespace": s("Namespace; absent for namespaces."),
                "selfLink": s("The path this object is served at."),
                "creationTimestamp": {"type": "string", "format": "date-time", "description": "When the object was computed (the end of the window)."},
            },
        },
        format!("{PREFIX}.ObjectReference"): {
            "description": "A Kubernetes object.",
            "type": "object",
            "properties": {
                "kind": s("Pod, Deployment, Daemonset, Statefulset, Job or Namespace (SMI SDK spelling)."),
                "namespace": s("Namespace of the object."),
                "name": s("Name of the object."),
            },
        },
        format!("{PREFIX}.Edge"): {
            "description": "Scope of the metrics: all traffic of the resource (resource null), or the traffic with one peer.",
            "type": "object",
            "properties": {
                "direction": s("to: the resource called the peer; from: the peer called the resource."),
                "resource": r("ObjectReference"),
            },
        },
        format!("{PREFIX}.Metric"): {
            "description": "One metric.",
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": s("p99_response_latency, p90_response_latency, p50_response_latency, success_count or failure_count."),
                "unit": s("ms for latencies; absent for counts."),
                "value": s("A Kubernetes quantity (296875m = 296.875). Absent on a latency when no request completed in the window."),
            },
        },
    })
}

/// The GET operations of every resource, each tagged with the Kind discovery gives
/// it (kubectl explain finds a resource's Kind through these).
fn paths(reference: &str, v3: bool) -> Value {
    let mut resources: Vec<(String, &str, bool)> = Kind::ALL
        .iter()
        .map(|k| (k.plural().to_string(), resource_kind(*k), k.namespaced()))
        .collect();
    resources.push((TRAFFICMETRICS.to_string(), "TrafficMetrics", true));
    let mut paths = serde_json::Map::new();
    for (plural, kind, namespaced) in resources {
        let base = if namespaced {
            format!("/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{plural}")
        } else {
            format!("/apis/{GROUP}/{VERSION}/{plural}")
        };
        for (path, action, schema) in [
            (base.clone(), "list", "TrafficMetricsList"),
            (format!("{base}/{{name}}"), "get", "TrafficMetrics"),
        ] {
            let target = json!({"$ref": format!("{reference}{PREFIX}.{schema}")});
            let response = if v3 {
                json!({"description": "OK", "content": {"application/json": {"schema": target}}})
            } else {
                json!({"description": "OK", "schema": target})
            };
            paths.insert(
                path,
                json!({"get": {
                    "operationId": format!("{action}{kind}"),
                    "description": format!("{action} {plural} traffic metrics; ?t=<window> sets the window"),
                    "responses": {"200": response},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk(kind),
                }}),
            );
        }
    }
    Value::Object(paths)
}

/// `GET /openapi/v2`.
pub fn v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "mesh-metrics", "version": VERSION},
        "paths": paths("#/definitions/", false),
        "definitions": definitions("#/definitions/"),
    })
}

/// `GET /openapi/v3/apis/metrics.smi-spec.io/v1alpha1`.
pub fn v3_group() -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "mesh-metrics", "version": VERSION},
        "paths": paths("#/components/schemas/", true),
        "components": {"schemas": definitions("#/components/schemas/")},
    })
}

/// `GET /openapi/v3`: the index, pointing at the group document with a content hash.
pub fn v3_index() -> Value {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v3_group().to_string().hash(&mut h);
    json!({"paths": {"apis/metrics.smi-spec.io/v1alpha1": {"serverRelativeURL": format!("{V3_GROUP_PATH}?hash={:016X}", h.finish())}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_reference_only_defined_schemas() {
        for (doc, prefix, defs) in [
            (v2(), "#/definitions/", "/definitions"),
            (v3_group(), "#/components/schemas/", "/components/schemas"),
        ] {
            let text = doc.to_string();
            let defined = doc.pointer(defs).unwrap().as_object().unwrap();
            for part in text.split("\"$ref\":\"").skip(1) {
                let target = part.split('"').next().unwrap();
                let name = target
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{target}"));
                assert!(defined.contains_key(name), "{name} is not defined");
            }
        }
    }

    #[test]
    fn every_discovery_kind_has_a_schema() {
        let doc = v3_group();
        let tm = &doc["components"]["schemas"]["io.smi-spec.metrics.v1alpha1.TrafficMetrics"];
        let kinds: Vec<&str> = tm["x-kubernetes-group-version-kind"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"TrafficMetrics"));
        assert!(kinds.contains(&"DeploymentTrafficMetrics"));
        assert!(
            v3_index()["paths"]["apis/metrics.smi-spec.io/v1alpha1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with(V3_GROUP_PATH)
        );
    }
}
