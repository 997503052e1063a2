//! Static discovery documents: `/apis`, `/apis/metrics.smi-spec.io` and the
//! version's APIResourceList. They never depend on Prometheus.

use adapters::model::Kind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, GroupVersionForDiscovery,
};

use crate::{GROUP, GROUP_VERSION, VERSION};

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

/// `GET /apis/metrics.smi-spec.io/v1alpha1`: one resource per kind the backends can
/// report, all of kind `TrafficMetrics` with verbs get and list, in a fixed order.
pub fn resource_list(kinds: &[Kind]) -> APIResourceList {
    let resources = Kind::ALL
        .iter()
        .filter(|k| kinds.contains(k))
        .map(|k| APIResource {
            name: k.plural().into(),
            singular_name: String::new(),
            namespaced: k.namespaced(),
            kind: "TrafficMetrics".into(),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        })
        .collect();
    APIResourceList {
        group_version: GROUP_VERSION.into(),
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_list_is_deterministic_and_smi_shaped() {
        let v = serde_json::to_value(resource_list(&Kind::ALL)).unwrap();
        assert_eq!(v["kind"], "APIResourceList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["groupVersion"], "metrics.smi-spec.io/v1alpha1");
        let names: Vec<&str> = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "namespaces",
                "pods",
                "deployments",
                "daemonsets",
                "statefulsets",
                "jobs"
            ]
        );
        let ns = &v["resources"][0];
        assert_eq!(ns["namespaced"], false);
        assert_eq!(ns["kind"], "TrafficMetrics");
        assert_eq!(ns["singularName"], "");
        assert_eq!(ns["verbs"], serde_json::json!(["get", "list"]));
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
}
