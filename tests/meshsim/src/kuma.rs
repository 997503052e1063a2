//! Kuma emitter: every meshed pod's data plane proxy's Envoy cluster statistics, with the labels
//! Kuma's Prometheus integration adds (`mesh`, `dataplane`, `kuma_io_service(s)`, `kuma_workload`,
//! `namespace`, `pod`, `app`).
//!
//! * A pod's `kuma.io/service` is `<service>_<namespace>_svc_<port>` of the Service selecting it;
//!   `kuma_workload` is its workload's name (the `kuma.io/workload` annotation).
//! * Server side: the inbound (local) cluster `localhost_<port>` counts every request the pod
//!   served (`envoy_cluster_upstream_rq_xx`, server latency in `envoy_cluster_upstream_rq_time`),
//!   including unmeshed callers (permissive mTLS).
//! * Client side: the caller's outbound cluster named after the callee's service (client
//!   latency); calls to unmeshed or external hosts leave through `outbound_passthrough_ipv4`.
//! * Data planes in `payments` and `batch` export through Kuma's OpenTelemetry-based MeshMetric
//!   pipeline, which appends `_total` to counters: `envoy_cluster_upstream_rq_xx_total`.
//! * Classes: the status' first digit; gRPC is `2`; a reset is answered with 503 (`5`) and timed.

use std::io::{self, Write};

use crate::consul::class;
use crate::emit::{emit, Family, Layout, SeriesSet};
use crate::openmetrics::Labels;
use crate::topology::{PodId, Scenario};
use crate::traffic::Flow;
use crate::view::{Side, View};
use crate::Dataset;

const FAMILIES: [Family; 3] = [
    (
        "envoy_cluster_upstream_rq_xx",
        "unknown",
        "Envoy counter cluster.*.upstream_rq_xx",
    ),
    (
        "envoy_cluster_upstream_rq_xx_total",
        "unknown",
        "Envoy counter cluster.*.upstream_rq_xx (MeshMetric, OpenTelemetry naming)",
    ),
    (
        "envoy_cluster_upstream_rq_time",
        "histogram",
        "Envoy histogram cluster.*.upstream_rq_time",
    ),
];

/// Namespaces whose data planes export through MeshMetric (`_total` counters).
const MESH_METRIC_NAMESPACES: [&str; 2] = ["payments", "batch"];

/// The `kuma.io/service` tag of a meshed pod, and its inbound port.
fn service_tag(s: &Scenario, pod: PodId) -> (String, u16) {
    let w = s.owner(pod);
    match s.service_of(pod) {
        Some(svc) => (
            format!("{}_{}_svc_{}", svc.name, svc.namespace, svc.port),
            svc.port,
        ),
        None => (format!("{}_{}_svc", w.name, w.namespace), 80),
    }
}

/// The labels Kuma's scrape adds for a data plane, then the cluster tags.
fn labels(s: &Scenario, pod: PodId, cluster: &str, class: Option<&str>) -> Labels {
    let w = s.owner(pod);
    let (tag, _) = service_tag(s, pod);
    let mut l = Labels::default();
    l.push("envoy_cluster_name", cluster);
    if let Some(class) = class {
        l.push("envoy_response_code_class", class);
    }
    l.push("app", &w.app)
        .push(
            "dataplane",
            &format!("{}.{}", s.pods[pod].name, w.namespace),
        )
        .push("job", "kuma-dataplanes")
        .push("k8s_kuma_io_namespace", &w.namespace)
        .push("kuma_io_protocol", "http")
        .push("kuma_io_service", &tag)
        .push("kuma_io_services", &format!(",{tag},"))
        .push("kuma_workload", &w.name)
        .push("mesh", "default")
        .push("namespace", &w.namespace)
        .push("pod", &s.pods[pod].name);
    l
}

/// The request counter's name on a pod's data plane.
fn counter(s: &Scenario, pod: PodId) -> &'static str {
    if MESH_METRIC_NAMESPACES.contains(&s.owner(pod).namespace.as_str()) {
        "envoy_cluster_upstream_rq_xx_total"
    } else {
        "envoy_cluster_upstream_rq_xx"
    }
}

/// Writes the dataset as Kuma data plane statistics in OpenMetrics text.
pub(crate) fn write(ds: &Dataset, out: &mut dyn Write) -> io::Result<()> {
    let s = ds.scenario();
    emit(
        ds,
        Layout::of(View::Kuma, false),
        &FAMILIES,
        out,
        |set: &mut SeriesSet, id, f: &Flow| {
            let class = class(f.outcome);
            let meshed = |p: Option<PodId>| p.filter(|&p| s.meshed(p));
            if let Some(dst) = meshed(f.dst) {
                let local = format!("localhost_{}", service_tag(s, dst).1);
                set.count(
                    id,
                    counter(s, dst),
                    &labels(s, dst, &local, Some(&class)),
                    Some(dst),
                );
                let h = labels(s, dst, &local, None);
                set.observe(
                    id,
                    "envoy_cluster_upstream_rq_time",
                    &h,
                    Some(dst),
                    Side::Server,
                );
            }
            if let Some(src) = meshed(f.src) {
                match meshed(f.dst) {
                    Some(dst) => {
                        let cluster = service_tag(s, dst).0;
                        set.count(
                            id,
                            counter(s, src),
                            &labels(s, src, &cluster, Some(&class)),
                            Some(src),
                        );
                        let h = labels(s, src, &cluster, None);
                        set.observe(
                            id,
                            "envoy_cluster_upstream_rq_time",
                            &h,
                            Some(src),
                            Side::Client,
                        );
                    }
                    None => {
                        let l = labels(s, src, "outbound_passthrough_ipv4", Some(&class));
                        set.count(id, counter(s, src), &l, Some(src));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openmetrics::check;
    use crate::topology::Scenario;
    use crate::Mesh;

    #[test]
    fn output_mixes_counter_names() {
        let start = 1_700_000_000;
        let ds = Dataset::generate(&Scenario::demo(), start, start + 120);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Kuma, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        let has = |needle: &str| text.lines().any(|l| l.contains(needle));
        assert!(has(
            r#"envoy_cluster_upstream_rq_xx{envoy_cluster_name="localhost_8080",envoy_response_code_class="2",app="api""#
        ));
        assert!(has(
            r#"envoy_cluster_upstream_rq_xx_total{envoy_cluster_name="localhost_9090",envoy_response_code_class="2",app="ledger""#
        ));
        assert!(has(
            r#"envoy_cluster_upstream_rq_xx{envoy_cluster_name="ledger_payments_svc_9090""#
        ));
        assert!(has(r#"kuma_io_service="store_shop_svc_8080""#));
        assert!(has(r#"envoy_cluster_name="outbound_passthrough_ipv4""#));
        assert!(has(r#"kuma_workload="store.v1""#));
    }
}
