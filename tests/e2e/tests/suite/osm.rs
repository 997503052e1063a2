//! Open Service Mesh: WASM statistics (client side, `-`/`.` mangled into `_`) and the
//! Envoy-only reading of the same Prometheus (counts without latency), against ground truth.

use e2e::{assert_metrics, env_for, metric, timestamp, BASE};
use meshsim::{Kind, Res, View};

use crate::smi;

#[tokio::test(flavor = "multi_thread")]
async fn osm_wasm_lists_match_ground_truth() {
    smi::lists_match_ground_truth(View::Osm).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn osm_wasm_objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(View::Osm).await;
    assert!(
        cov.failing_edges > 0 && cov.cross_namespace > 0 && cov.self_edges > 0 && cov.idle > 0,
        "{cov:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn osm_refuses_services() {
    smi::unsupported_kinds_answer_404(View::Osm).await;
    smi::unknown_object_is_zero(View::Osm).await;
    smi::unsupported_kinds_answer_404(View::OsmEnvoy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn osm_envoy_only_lists_match_ground_truth() {
    smi::lists_match_ground_truth(View::OsmEnvoy).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn osm_envoy_only_objects_match_and_edges_are_refused() {
    let cov = smi::objects_and_edges_match_ground_truth(View::OsmEnvoy).await;
    assert_eq!(cov.edges, 0);
    let (code, _, body) = env_for(View::OsmEnvoy)
        .server
        .get(&format!("{BASE}/namespaces/shop/edges"))
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("osmStats: wasm"),
        "{body}"
    );
}

/// WASM labels read `store_v1` for both `store.v1` and `store-v1`: the server reports
/// them as one `store-v1` (and knows no `store.v1`); Envoy-only labels keep both apart.
#[tokio::test(flavor = "multi_thread")]
async fn osm_wasm_names_are_unmangled() {
    let env = env_for(View::Osm);
    let (_, _, list) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments?t=5m"))
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"store-v1") && !names.contains(&"store.v1"),
        "{names:?}"
    );
    let (_, _, dot) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments/store.v1?t=5m"))
        .await;
    assert_eq!(metric(&dot, "success_count"), Some("0"));
    let (_, _, agent) = env
        .server
        .get(&format!(
            "{BASE}/namespaces/platform/daemonsets/node-agent?t=5m"
        ))
        .await;
    let at = timestamp(&agent);
    let exp = env.dataset.truth(View::Osm).resource(
        &Res::new(Kind::DaemonSet, "platform", "node-agent"),
        at,
        300,
    );
    assert!(exp.success > 0);
    assert_metrics(&agent, &exp, "node-agent");

    let envoy = env_for(View::OsmEnvoy);
    let (_, _, list) = envoy
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments?t=5m"))
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"store-v1") && names.contains(&"store.v1"),
        "{names:?}"
    );
    assert!(list["items"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["unit"] == "ms")
        .all(|m| m["value"].is_null()));
}
