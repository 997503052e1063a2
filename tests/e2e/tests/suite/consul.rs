//! Consul: services, pods and namespaces against ground truth; edges measured by the
//! callers with the callee's Kubernetes namespace joined in.

use e2e::{assert_metrics, env_for, timestamp, BASE};
use meshsim::{Kind, Res, View};

use crate::smi;

const VIEW: View = View::Consul;

#[tokio::test(flavor = "multi_thread")]
async fn consul_lists_match_ground_truth() {
    smi::lists_match_ground_truth(VIEW).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consul_objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(VIEW).await;
    assert!(
        cov.failing_edges > 0 && cov.cross_namespace > 0 && cov.self_edges > 0,
        "{cov:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consul_refuses_workload_kinds() {
    smi::unsupported_kinds_answer_404(VIEW).await;
    smi::unknown_object_is_zero(VIEW).await;
    // the combined workload list has nothing to show, rather than failing
    let (code, _, body) = env_for(VIEW)
        .server
        .get(&format!("{BASE}/namespaces/shop/trafficmetrics"))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"], serde_json::json!([]));
}

/// A Consul service is every pod behind it (`store` selects two Deployments), and the
/// `local_app` cluster that repeats a proxy's inbound requests is not counted again.
#[tokio::test(flavor = "multi_thread")]
async fn consul_service_is_all_its_pods_once() {
    let env = env_for(VIEW);
    let (_, _, store) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/services/store?t=5m"))
        .await;
    let at = timestamp(&store);
    let truth = env.dataset.truth(VIEW);
    let exp = truth.resource(&Res::new(Kind::Service, "shop", "store"), at, 300);
    assert_metrics(&store, &exp, "store");
    let linkerd = env.dataset.truth(View::Linkerd);
    let parts: u64 = ["store.v1", "store-v1"]
        .iter()
        .map(|d| {
            let e = linkerd.resource(&Res::new(Kind::Deployment, "shop", d), at, 300);
            e.success + e.failure
        })
        .sum();
    assert_eq!(exp.success + exp.failure, parts);
    let naive = env
        .prom
        .query(
            r#"sum(increase(envoy_cluster_upstream_rq_xx{consul_source_service="store"}[5m]))"#,
            at,
        )
        .unwrap()[0]
        .value;
    assert!(
        naive >= parts as f64,
        "local_app repeats the inbound requests: {naive}"
    );
}
