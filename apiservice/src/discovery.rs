//! Static discovery documents: `/apis` (v1 `APIGroupList`, or the aggregated
//! `apidiscovery.k8s.io/v2` form when asked), `/apis/metrics.smi-spec.io`, and the
//! version's `APIResourceList`. They never depend on Prometheus.
//!
//! kubectl's RESTMapper keeps one resource per Kind (the last listed), so every
//! resource gets its own Kind here (`DeploymentTrafficMetrics`, ...), and the
//! combined `trafficmetrics` resource (Kind `TrafficMetrics`, short name `tm`) comes
//! last. SMI clients read `kind` from response bodies, which stay `TrafficMetrics`.

use adapters::model::Kind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, GroupVersionForDiscovery,
};
use serde_json::{json, Value};

use crate::request::TRAFFICMETRICS;
use crate::{GROUP, GROUP_VERSION, VERSION};

/// The content type (and `Accept` entry) of aggregated discovery v2.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.first() == Some(&"application/json")
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// The Kind that discovery gives the per-kind resource of `kind`.
pub fn resource_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "NamespaceTrafficMetrics",
        Kind::Pod => "PodTrafficMetrics",
        Kind::Deployment => "DeploymentTrafficMetrics",
        Kind::DaemonSet => "DaemonSetTrafficMetrics",
        Kind::StatefulSet => "StatefulSetTrafficMetrics",
        Kind::Job => "JobTrafficMetrics",
        Kind::Service => "ServiceTrafficMetrics",
    }
}

struct Entry {
    name: &'static str,
    kind: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
}

fn entries(kinds: &[Kind]) -> Vec<Entry> {
    let mut v: Vec<Entry> = Kind::ALL
        .iter()
        .filter(|k| kinds.contains(k))
        .map(|k| Entry {
            name: k.plural(),
            kind: resource_kind(*k),
            singular: "",
            namespaced: k.namespaced(),
            short_names: &[],
            categories: &[],
        })
        .collect();
    v.push(Entry {
        name: TRAFFICMETRICS,
        kind: "TrafficMetrics",
        singular: "trafficmetric",
        namespaced: true,
        short_names: &["tm"],
        categories: &["smi"],
    });
    v
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect())
}

fn group() -> APIGroup {
    let gv = GroupVersionForDiscovery {
        group_version: GROUP_VERSION.into(),
        version: VERSION.into(),
    };
    APIGroup {
        name: GROUP.into(),
        preferred_version: Some(gv.clone()),
        server_address_by_client_cidrs: None,
        versions: vec![gv],
    }
}

/// `GET /apis`.
pub fn group_list() -> APIGroupList {
    APIGroupList {
        groups: vec![group()],
    }
}

/// `GET /apis/metrics.smi-spec.io`.
pub fn api_group() -> APIGroup {
    group()
}

/// `GET /apis/metrics.smi-spec.io/v1alpha1`: the per-kind resources the backends
/// can report, their `edges` subresources, then `trafficmetrics`; verbs get and list.
pub fn resource_list(kinds: &[Kind]) -> APIResourceList {
    let mut resources = Vec::new();
    for e in entries(kinds) {
        resources.push(APIResource {
            name: e.name.into(),
            singular_name: e.singular.into(),
            namespaced: e.namespaced,
            kind: e.kind.into(),
            verbs: vec!["get".into(), "list".into()],
            short_names: strings(e.short_names),
            categories: strings(e.categories),
            ..Default::default()
        });
        resources.push(APIResource {
            name: format!("{}/edges", e.name),
            singular_name: String::new(),
            namespaced: e.namespaced,
            kind: "TrafficMetricsList".into(),
            verbs: vec!["get".into()],
            ..Default::default()
        });
    }
    APIResourceList {
        group_version: GROUP_VERSION.into(),
        resources,
    }
}

/// `GET /apis` with the aggregated discovery `Accept`: an `APIGroupDiscoveryList`.
pub fn aggregated(kinds: &[Kind]) -> Value {
    let gvk = |kind: &str| json!({"group": GROUP, "version": VERSION, "kind": kind});
    let resources: Vec<Value> = entries(kinds)
        .iter()
        .map(|e| {
            let singular = if e.singular.is_empty() { e.kind.to_lowercase() } else { e.singular.to_string() };
            json!({
                "resource": e.name,
                "responseKind": gvk(e.kind),
                "scope": if e.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": singular,
                "verbs": ["get", "list"],
                "shortNames": e.short_names,
                "categories": e.categories,
                "subresources": [{"subresource": "edges", "responseKind": gvk("TrafficMetricsList"), "verbs": ["get"]}],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [{
            "metadata": {"name": GROUP},
            "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_list_gives_each_resource_its_own_kind_and_trafficmetrics_last() {
        let v = serde_json::to_value(resource_list(&Kind::ALL)).unwrap();
        assert_eq!(v["kind"], "APIResourceList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["groupVersion"], "metrics.smi-spec.io/v1alpha1");
        let top: Vec<&Value> = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["name"].as_str().unwrap().contains('/'))
            .collect();
        let names: Vec<&str> = top.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "namespaces",
                "pods",
                "deployments",
                "daemonsets",
                "statefulsets",
                "jobs",
                "services",
                "trafficmetrics"
            ]
        );
        let mut kinds: Vec<&str> = top.iter().map(|r| r["kind"].as_str().unwrap()).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), top.len(), "kinds must be distinct");
        let tm = top.last().unwrap();
        assert_eq!(tm["kind"], "TrafficMetrics");
        assert_eq!(tm["singularName"], "trafficmetric");
        assert_eq!(tm["shortNames"], json!(["tm"]));
        assert_eq!(top[0]["namespaced"], false);
        assert_eq!(top[0]["verbs"], json!(["get", "list"]));
        assert!(v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/edges"));
    }

    #[test]
    fn group_documents() {
        let v = serde_json::to_value(group_list()).unwrap();
        assert_eq!(v["kind"], "APIGroupList");
        assert_eq!(v["groups"][0]["name"], GROUP);
        assert_eq!(
            v["groups"][0]["preferredVersion"]["groupVersion"],
            GROUP_VERSION
        );
        let g = serde_json::to_value(api_group()).unwrap();
        assert_eq!(g["kind"], "APIGroup");
        assert_eq!(g["versions"][0]["version"], VERSION);
    }

    #[test]
    fn aggregated_discovery_v2() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json, */*"));
        let v = aggregated(&[Kind::Deployment]);
        assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
        let r = &v["items"][0]["versions"][0]["resources"];
        assert_eq!(r[0]["resource"], "deployments");
        assert_eq!(r[0]["scope"], "Namespaced");
        assert_eq!(r[0]["responseKind"]["kind"], "DeploymentTrafficMetrics");
        assert_eq!(r[1]["resource"], "trafficmetrics");
        assert_eq!(r[1]["singularResource"], "trafficmetric");
        assert_eq!(r[1]["subresources"][0]["subresource"], "edges");
    }
}
