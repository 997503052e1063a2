//! Server-side printing: a `meta.k8s.io` `Table` for kubectl, negotiated from the
//! `Accept` header (`application/json;as=Table;v=v1;g=meta.k8s.io`). Columns: NAME,
//! SUCCESS (rate), RPS, P50, P90, P99, WINDOW; with `-o wide` also REQUESTS, FAILURES
//! and KIND; EDGE (direction and peer) when the table holds edges.

use serde::Serialize;
use serde_json::Value;

use crate::quantity;
use crate::wire::TrafficMetrics;

/// The Table versions kubectl asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    /// `meta.k8s.io/v1`
    V1,
    /// `meta.k8s.io/v1beta1`
    V1Beta1,
}

impl TableVersion {
    /// The `apiVersion` of the Table.
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }

    /// The response content type.
    pub fn content_type(self) -> &'static str {
        match self {
            TableVersion::V1 => "application/json;as=Table;v=v1;g=meta.k8s.io",
            TableVersion::V1Beta1 => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        }
    }
}

/// Which object each row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default; kubectl needs it for `-A` and labels).
    Metadata,
    /// The full `TrafficMetrics` (kubectl's `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Reads `includeObject` from a raw query string.
    pub fn from_query(query: Option<&str>) -> Self {
        let v = query
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "includeObject")
            .map(|(_, v)| v.into_owned());
        match v.as_deref() {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// The first Table version an `Accept` header asks for, if any (in header order).
pub fn negotiate(accept: &str) -> Option<TableVersion> {
    accept.split(',').find_map(|media| {
        let mut parts = media.split(';').map(str::trim);
        let base = parts.next()?;
        if base != "application/json" {
            return None;
        }
        let (mut is_table, mut group, mut version) = (false, false, None);
        for p in parts {
            match p.split_once('=') {
                Some(("as", "Table")) => is_table = true,
                Some(("g", "meta.k8s.io")) => group = true,
                Some(("v", "v1")) => version = Some(TableVersion::V1),
                Some(("v", "v1beta1")) => version = Some(TableVersion::V1Beta1),
                _ => {}
            }
        }
        if is_table && group {
            version
        } else {
            None
        }
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Column {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

#[derive(Serialize)]
struct Row {
    cells: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Table {
    kind: &'static str,
    api_version: &'static str,
    metadata: Value,
    column_definitions: Vec<Column>,
    rows: Vec<Row>,
}

/// Renders objects (a list's items, or one object) as a Table.
pub fn render(items: &[TrafficMetrics], version: TableVersion, include: IncludeObject) -> Vec<u8> {
    let edges = items.iter().any(|i| i.edge.resource.is_some());
    let mut columns = vec![col(
        "Name",
        "string",
        "name",
        "Name of the measured object",
        0,
    )];
    if edges {
        columns.push(col(
            "Edge",
            "string",
            "",
            "Direction of the traffic and the peer",
            0,
        ));
    }
    columns.extend([
        col(
            "Success",
            "string",
            "",
            "Share of responses that succeeded",
            0,
        ),
        col(
            "RPS",
            "string",
            "",
            "Requests per second over the window",
            0,
        ),
        col("P50", "string", "", "Median response latency", 0),
        col("P90", "string", "", "90th percentile response latency", 0),
        col("P99", "string", "", "99th percentile response latency", 0),
        col("Window", "string", "", "Length of the measured window", 0),
        col("Requests", "integer", "", "Responses in the window", 1),
        col(
            "Failures",
            "integer",
            "",
            "Failed responses in the window",
            1,
        ),
        col("Kind", "string", "", "Kind of the measured object", 1),
    ]);
    let rows = items
        .iter()
        .map(|i| Row {
            cells: cells(i, edges),
            object: match include {
                IncludeObject::None => None,
                IncludeObject::Object => serde_json::to_value(i).ok(),
                IncludeObject::Metadata => Some(partial_metadata(i, version)),
            },
        })
        .collect();
    let table = Table {
        kind: "Table",
        api_version: version.api_version(),
        metadata: serde_json::json!({"resourceVersion": ""}),
        column_definitions: columns,
        rows,
    };
    serde_json::to_vec(&table).unwrap_or_default()
}

fn col(
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        kind,
        format,
        description,
        priority,
    }
}

fn partial_metadata(i: &TrafficMetrics, version: TableVersion) -> Value {
    let mut meta = serde_json::json!({"name": i.metadata.name, "creationTimestamp": i.metadata.creation_timestamp});
    if let Some(ns) = &i.metadata.namespace {
        meta["namespace"] = Value::from(ns.as_str());
    }
    serde_json::json!({"kind": "PartialObjectMetadata", "apiVersion": version.api_version(), "metadata": meta})
}

fn value(i: &TrafficMetrics, name: &str) -> Option<f64> {
    i.metrics
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.value.as_deref())
        .and_then(quantity::parse)
}

fn latency(i: &TrafficMetrics, name: &str) -> Value {
    match value(i, name) {
        Some(ms) => Value::from(format!("{}ms", trim(format!("{ms:.1}")))),
        None => Value::from("-"),
    }
}

fn trim(s: String) -> String {
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn cells(i: &TrafficMetrics, edges: bool) -> Vec<Value> {
    let success = value(i, "success_count").unwrap_or(0.0);
    let failure = value(i, "failure_count").unwrap_or(0.0);
    let total = success + failure;
    let secs = adapters::duration::parse(&i.window)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut cells = vec![Value::from(i.metadata.name.as_str())];
    if edges {
        cells.push(Value::from(match &i.edge.resource {
            Some(peer) => format!(
                "{} {}/{}",
                i.edge.direction,
                peer.kind.as_deref().unwrap_or("").to_lowercase(),
                match &peer.namespace {
                    Some(ns) => format!("{ns}/{}", peer.name.as_deref().unwrap_or("")),
                    None => peer.name.clone().unwrap_or_default(),
                }
            ),
            None => "-".into(),
        }));
    }
    cells.extend([
        Value::from(if total > 0.0 {
            format!("{:.2}%", 100.0 * success / total)
        } else {
            "-".into()
        }),
        Value::from(if secs > 0.0 {
            trim(format!("{:.1}", total / secs))
        } else {
            "-".into()
        }),
        latency(i, "p50_response_latency"),
        latency(i, "p90_response_latency"),
        latency(i, "p99_response_latency"),
        Value::from(i.window.as_str()),
        Value::from(total.round() as i64),
        Value::from(failure.round() as i64),
        Value::from(i.resource.kind.clone().unwrap_or_default()),
    ]);
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Edge, Metric, ObjectMeta, ObjectReference};

    fn tm(
        success: &str,
        failure: &str,
        p50: Option<&str>,
        edge: Option<ObjectReference>,
    ) -> TrafficMetrics {
        let m = |name: &str, unit: Option<&str>, value: Option<&str>| Metric {
            name: name.into(),
            unit: unit.map(String::from),
            value: value.map(String::from),
        };
        TrafficMetrics {
            kind: "TrafficMetrics".into(),
            api_version: "metrics.smi-spec.io/v1alpha1".into(),
            metadata: ObjectMeta {
                name: "deployment-web".into(),
                namespace: Some("shop".into()),
                self_link: String::new(),
                creation_timestamp: "2024-01-01T00:00:00Z".into(),
            },
            timestamp: "2024-01-01T00:00:00Z".into(),
            window: "30s".into(),
            resource: ObjectReference {
                kind: Some("Deployment".into()),
                namespace: Some("shop".into()),
                name: Some("web".into()),
            },
            edge: Edge {
                direction: if edge.is_some() { "to" } else { "from" }.into(),
                resource: edge,
            },
            metrics: vec![
                m("p99_response_latency", Some("ms"), p50.map(|_| "12500m")),
                m("p90_response_latency", Some("ms"), p50.map(|_| "9")),
                m("p50_response_latency", Some("ms"), p50),
                m("success_count", None, Some(success)),
                m("failure_count", None, Some(failure)),
            ],
        }
    }

    #[test]
    fn negotiates_like_kubectl() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl), Some(TableVersion::V1));
        assert_eq!(
            negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Some(TableVersion::V1Beta1)
        );
        assert_eq!(negotiate("application/json, */*"), None);
        assert_eq!(
            negotiate("application/json;as=Table;v=v2;g=meta.k8s.io"),
            None
        );
    }

    #[test]
    fn rows_show_rates_and_latencies() {
        let v: Value = serde_json::from_slice(&render(
            &[
                tm("297", "3", Some("2500m"), None),
                tm("0", "0", None, None),
            ],
            TableVersion::V1,
            IncludeObject::Metadata,
        ))
        .unwrap();
        assert_eq!(v["kind"], "Table");
        assert_eq!(v["apiVersion"], "meta.k8s.io/v1");
        let names: Vec<&str> = v["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name", "Success", "RPS", "P50", "P90", "P99", "Window", "Requests", "Failures",
                "Kind"
            ]
        );
        assert_eq!(v["columnDefinitions"][0]["format"], "name");
        assert_eq!(
            v["rows"][0]["cells"],
            serde_json::json!([
                "deployment-web",
                "99.00%",
                "10",
                "2.5ms",
                "9ms",
                "12.5ms",
                "30s",
                300,
                3,
                "Deployment"
            ])
        );
        assert_eq!(v["rows"][1]["cells"][1], "-");
        assert_eq!(v["rows"][1]["cells"][3], "-");
        assert_eq!(v["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(v["rows"][0]["object"]["metadata"]["namespace"], "shop");
    }

    #[test]
    fn edge_tables_have_an_edge_column_and_objects_on_request() {
        let peer = ObjectReference {
            kind: Some("Deployment".into()),
            namespace: Some("payments".into()),
            name: Some("ledger".into()),
        };
        let v: Value = serde_json::from_slice(&render(
            &[tm("10", "0", None, Some(peer))],
            TableVersion::V1Beta1,
            IncludeObject::Object,
        ))
        .unwrap();
        assert_eq!(v["columnDefinitions"][1]["name"], "Edge");
        assert_eq!(v["rows"][0]["cells"][1], "to deployment/payments/ledger");
        assert_eq!(v["rows"][0]["object"]["kind"], "TrafficMetrics");
        let none: Value = serde_json::from_slice(&render(
            &[tm("1", "0", None, None)],
            TableVersion::V1,
            IncludeObject::None,
        ))
        .unwrap();
        assert!(none["rows"][0].get("object").is_none());
        assert_eq!(
            IncludeObject::from_query(Some("includeObject=Object&limit=5")),
            IncludeObject::Object
        );
        assert_eq!(IncludeObject::from_query(None), IncludeObject::Metadata);
    }
}
