//! Cilium / Hubble: every kind against ground truth, latency from seconds buckets,
//! and peers without L7 visibility named from Hubble's identities.

use e2e::{env_for, metric, timestamp, BASE};
use meshsim::{Direction, Kind, Res, View};

use crate::smi;

const VIEW: View = View::Cilium;

#[tokio::test(flavor = "multi_thread")]
async fn cilium_lists_match_ground_truth() {
    smi::lists_match_ground_truth(VIEW).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cilium_objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(VIEW).await;
    assert!(
        cov.failing_edges > 0 && cov.cross_namespace > 0 && cov.self_edges > 0 && cov.idle > 0,
        "{cov:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cilium_refuses_services() {
    smi::unsupported_kinds_answer_404(VIEW).await;
    smi::unknown_object_is_zero(VIEW).await;
}

/// Hubble's buckets are seconds; Prometheus' own quantile, times 1000, must match ours.
#[tokio::test(flavor = "multi_thread")]
async fn cilium_latency_is_seconds_times_1000() {
    let env = env_for(VIEW);
    let (_, _, api) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments/api?t=5m"))
        .await;
    let at = timestamp(&api);
    for (q, m) in [
        ("0.5", "p50_response_latency"),
        ("0.99", "p99_response_latency"),
    ] {
        let prom = env
            .prom
            .query(
                &format!(r#"1000 * histogram_quantile({q}, sum by (le) (rate(hubble_http_request_duration_seconds_bucket{{reporter="server", destination_namespace="shop", destination_workload="api"}}[5m])))"#),
                at,
            )
            .unwrap()[0]
            .value;
        let ours = apiservice::quantity::parse(metric(&api, m).unwrap()).unwrap();
        assert!(
            (ours - prom).abs() < 0.002,
            "{m}: ours {ours}, Prometheus {prom}"
        );
    }
}

/// The unmeshed poller calls api: Hubble names it, so it is a `from` edge of api.
#[tokio::test(flavor = "multi_thread")]
async fn cilium_names_peers_without_l7_visibility() {
    let env = env_for(VIEW);
    let api = Res::new(Kind::Deployment, "shop", "api");
    let (_, _, edges) = env
        .server
        .get(&format!(
            "{BASE}/namespaces/shop/deployments/api/edges?t=5m"
        ))
        .await;
    let at = timestamp(&edges["items"][0]);
    let truth = env.dataset.truth(VIEW).edges(&api, at, 300);
    assert!(truth.iter().any(|e| e.direction == Direction::From
        && e.peer == Res::new(Kind::Deployment, "legacy", "poller")));
    smi::assert_edges(&edges, &api, &truth, "api edges");
}
