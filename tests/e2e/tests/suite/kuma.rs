//! Kuma: services, pods, namespaces and `kuma_workload` workloads against ground
//! truth, with data planes that export counters with and without `_total`.

use e2e::{assert_metrics, env_for, timestamp, BASE};
use meshsim::{Kind, Res, View};

use crate::smi;

const VIEW: View = View::Kuma;

#[tokio::test(flavor = "multi_thread")]
async fn kuma_lists_match_ground_truth() {
    smi::lists_match_ground_truth(VIEW).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kuma_objects_and_edges_match_ground_truth() {
    let cov = smi::objects_and_edges_match_ground_truth(VIEW).await;
    assert!(
        cov.failing_edges > 0 && cov.cross_namespace > 0 && cov.self_edges > 0,
        "{cov:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kuma_unknown_objects_are_zero() {
    smi::unsupported_kinds_answer_404(VIEW).await;
    smi::unknown_object_is_zero(VIEW).await;
}

/// `payments` exports `envoy_cluster_upstream_rq_xx_total` only: a server that asked for
/// one name would see nothing there.
#[tokio::test(flavor = "multi_thread")]
async fn kuma_reads_counters_with_and_without_total() {
    let env = env_for(VIEW);
    for (ns, svc, plain) in [("payments", "ledger", false), ("shop", "api", true)] {
        let (_, _, obj) = env
            .server
            .get(&format!("{BASE}/namespaces/{ns}/services/{svc}?t=1m"))
            .await;
        let at = timestamp(&obj);
        let exp = env
            .dataset
            .truth(VIEW)
            .resource(&Res::new(Kind::Service, ns, svc), at, 60);
        assert!(exp.success > 0);
        assert_metrics(&obj, &exp, svc);
        let count = |metric: &str| {
            env.prom
                .query(&format!(r#"count({metric}{{namespace="{ns}"}})"#), at)
                .unwrap()
                .len()
        };
        assert_eq!(count("envoy_cluster_upstream_rq_xx") == 1, plain, "{ns}");
        assert_eq!(
            count("envoy_cluster_upstream_rq_xx_total") == 1,
            !plain,
            "{ns}"
        );
    }
}
