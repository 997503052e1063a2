//! Istio: the same checks against ground truth, plus the traps in Istio's data: every
//! request between sidecars reported twice, an ambient namespace reported by its
//! waypoint only, `response_code="0"` and gRPC failures behind HTTP 200.

use e2e::{assert_metrics, env_for, metric, timestamp, BASE};
use meshsim::{Direction, Kind, Res, View};

use crate::smi;

const VIEW: View = View::Istio;

#[tokio::test(flavor = "multi_thread")]
async fn istio_lists_match_ground_truth() {
    smi::lists_match_ground_truth(VIEW).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn istio_objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(VIEW).await;
    assert!(
        cov.failing_edges > 0 && cov.cross_namespace > 0 && cov.self_edges > 0 && cov.idle > 0,
        "{cov:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn istio_refuses_services_and_pod_edges() {
    smi::unsupported_kinds_answer_404(VIEW).await;
    smi::unknown_object_is_zero(VIEW).await;
}

/// The sum over both reporters is what a naive query returns; the server must give the
/// server side only.
#[tokio::test(flavor = "multi_thread")]
async fn istio_never_counts_a_request_twice() {
    let env = env_for(VIEW);
    let (_, _, api) = env
        .server
        .get(&format!("{BASE}/namespaces/shop/deployments/api?t=5m"))
        .await;
    let at = timestamp(&api);
    let truth =
        env.dataset
            .truth(VIEW)
            .resource(&Res::new(Kind::Deployment, "shop", "api"), at, 300);
    let served: f64 = ["success_count", "failure_count"]
        .iter()
        .map(|m| metric(&api, m).unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(served, (truth.success + truth.failure) as f64);
    let naive = env
        .prom
        .query(
            r#"sum(increase(istio_requests_total{destination_workload_namespace="shop", destination_workload="api"}[5m]))"#,
            at,
        )
        .unwrap()[0]
        .value;
    // every meshed caller's requests are there twice; only the poller's (unmeshed) once
    assert!(naive > served * 1.5, "naive {naive} vs served {served}");
}

/// `batch` runs ambient: no sidecar reports its calls, its waypoint reports the calls into it.
#[tokio::test(flavor = "multi_thread")]
async fn istio_ambient_namespace_is_seen_through_its_waypoint() {
    let env = env_for(VIEW);
    let (_, _, edges) = env
        .server
        .get(&format!("{BASE}/namespaces/batch/edges?t=5m"))
        .await;
    let items = edges["items"].as_array().unwrap();
    let at = timestamp(&items[0]);
    let from_source = env
        .prom
        .query(
            r#"count(istio_requests_total{reporter="source", source_workload_namespace="batch"})"#,
            at,
        )
        .unwrap();
    assert!(
        from_source.is_empty(),
        "ambient pods have no client-side series"
    );
    let waypoint = env
        .prom
        .query(r#"count(istio_requests_total{reporter="waypoint"})"#, at)
        .unwrap();
    assert!(waypoint[0].value > 0.0);
    let truth = env
        .dataset
        .truth(VIEW)
        .edges(&Res::namespace("batch"), at, 300);
    let to: Vec<&str> = truth
        .iter()
        .filter(|e| e.direction == Direction::To)
        .map(|e| e.peer.name.as_str())
        .collect();
    assert_eq!(to, ["payments", "shop"]);
    smi::assert_edges(&edges, &Res::namespace("batch"), &truth, "batch edges");
}

/// Failures the HTTP status does not show: gRPC statuses (ledger) and resets (`0`).
#[tokio::test(flavor = "multi_thread")]
async fn istio_grpc_and_reset_failures_count() {
    let env = env_for(VIEW);
    for (name, hidden) in [
        ("ledger", r#"grpc_response_status=~"2|4|13|14|15""#),
        ("gateway", r#"response_code="0""#),
    ] {
        let (_, _, obj) = env
            .server
            .get(&format!(
                "{BASE}/namespaces/payments/deployments/{name}?t=5m"
            ))
            .await;
        let at = timestamp(&obj);
        let truth = env.dataset.truth(VIEW).resource(
            &Res::new(Kind::Deployment, "payments", name),
            at,
            300,
        );
        assert!(truth.failure > 0);
        assert_metrics(&obj, &truth, name);
        let in_data = env
            .prom
            .query(
                &format!(r#"sum(increase(istio_requests_total{{reporter="destination", destination_workload="{name}", {hidden}}}[5m]))"#),
                at,
            )
            .unwrap();
        assert!(in_data[0].value > 0.0, "{name}: {hidden} in the data");
    }
}
