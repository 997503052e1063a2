//! OSM emitter: what OSM's bundled Prometheus stores with WASM statistics enabled.
//!
//! * `osm_request_total` and `osm_request_duration_ms` (job `smi-metrics`), recorded by the
//!   **calling** proxy for requests between two meshed pods only, labelled with both ends
//!   (namespace, kind, name, pod). The labels were cut out of Envoy stat names, where every
//!   character outside `[A-Za-z0-9_]` became `_` (`store.v1` and `store-v1` both read `store_v1`).
//!   Durations are whole milliseconds (the filter truncates); resets come back as 503 and are
//!   timed; gRPC responses are 200.
//! * `envoy_cluster_upstream_rq_xx` (job `kubernetes-pods`, every other Envoy series dropped by the
//!   bundled configuration, histograms included), labelled by OSM's relabelling with the scraped
//!   pod as `source_namespace`, `source_pod_name`, `source_service`, `source_workload_kind` and
//!   `source_workload_name` (real names). Server side: the local cluster
//!   `<namespace>/<service>|<port>|local` counts every request the pod served; client side:
//!   `<namespace>/<service>|<port>` for meshed services, `passthrough-outbound` otherwise.

use std::io::{self, Write};

use crate::consul::class;
use crate::emit::{emit, Family, Layout, SeriesSet};
use crate::openmetrics::Labels;
use crate::topology::{Kind, Outcome, PodId, Scenario, Target};
use crate::traffic::Flow;
use crate::view::{sanitize, Side, View};
use crate::Dataset;

const FAMILIES: [Family; 3] = [
    ("osm_request", "counter", "OSM WASM request count"),
    (
        "osm_request_duration_ms",
        "histogram",
        "OSM WASM request duration",
    ),
    (
        "envoy_cluster_upstream_rq_xx",
        "unknown",
        "Envoy counter cluster.*.upstream_rq_xx",
    ),
];

/// How OSM names a workload kind.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Deployment => "Deployment",
        Kind::StatefulSet => "StatefulSet",
        Kind::DaemonSet => "DaemonSet",
        Kind::Job => "Job",
        Kind::Namespace | Kind::Pod | Kind::Service => unreachable!("{kind:?} does not own pods"),
    }
}

/// The WASM labels of one end of a request, sanitised.
fn wasm_end(l: &mut Labels, s: &Scenario, end: &str, pod: PodId) {
    let w = s.owner(pod);
    l.push(&format!("{end}_namespace"), &sanitize(&w.namespace))
        .push(&format!("{end}_kind"), kind_name(w.kind))
        .push(&format!("{end}_name"), &sanitize(&w.name))
        .push(&format!("{end}_pod"), &sanitize(&s.pods[pod].name));
}

/// The labels OSM's `kubernetes-pods` job gives a pod's Envoy series, after the cluster tags.
fn envoy_labels(s: &Scenario, pod: PodId, cluster: &str, class: &str) -> Labels {
    let w = s.owner(pod);
    let mut l = Labels::default();
    l.push("envoy_cluster_name", cluster)
        .push("envoy_response_code_class", class)
        .push("instance", &format!("{}:15000", s.pods[pod].ip))
        .push("job", "kubernetes-pods")
        .push("source_namespace", &w.namespace)
        .push("source_pod_name", &s.pods[pod].name)
        .push("source_service", &w.app)
        .push("source_workload_kind", kind_name(w.kind))
        .push("source_workload_name", &w.name);
    l
}

/// The cluster of a meshed Service on the port requests reach.
fn cluster(s: &Scenario, pod: PodId) -> String {
    match s.service_of(pod) {
        Some(svc) => format!("{}/{}|{}", svc.namespace, svc.name, svc.port),
        None => format!("{}/{}|80", s.owner(pod).namespace, s.owner(pod).name),
    }
}

/// Writes the dataset as OSM's WASM and Envoy series in OpenMetrics text.
pub(crate) fn write(ds: &Dataset, out: &mut dyn Write) -> io::Result<()> {
    let s = ds.scenario();
    emit(
        ds,
        Layout::of(View::Osm, false),
        &FAMILIES,
        out,
        |set: &mut SeriesSet, id, f: &Flow| {
            let meshed = |p: Option<PodId>| p.filter(|&p| s.meshed(p));
            let class = class(f.outcome);
            if let (Some(src), Some(dst)) = (meshed(f.src), meshed(f.dst)) {
                let mut ends = Labels::default();
                wasm_end(&mut ends, s, "source", src);
                wasm_end(&mut ends, s, "destination", dst);
                let job = |l: &mut Labels| {
                    l.push("instance", &format!("{}:15010", s.pods[src].ip))
                        .push("job", "smi-metrics");
                };
                let code = match f.outcome {
                    Outcome::Http(c) => c.to_string(),
                    Outcome::Grpc(_) => "200".to_owned(),
                    Outcome::Reset => "503".to_owned(),
                };
                let mut counter = Labels::default();
                counter.push("response_code", &code);
                counter.extend(&ends);
                job(&mut counter);
                set.count(id, "osm_request_total", &counter, Some(src));
                let mut histogram = ends;
                job(&mut histogram);
                set.observe(
                    id,
                    "osm_request_duration_ms",
                    &histogram,
                    Some(src),
                    Side::Client,
                );
            }
            if let Some(dst) = meshed(f.dst) {
                let local = format!("{}|local", cluster(s, dst));
                set.count(
                    id,
                    "envoy_cluster_upstream_rq_xx",
                    &envoy_labels(s, dst, &local, &class),
                    Some(dst),
                );
            }
            if let Some(src) = meshed(f.src) {
                let call = &s.calls[usize::from(f.call)];
                let target = match (meshed(f.dst), &call.to) {
                    (Some(dst), Target::Service(_)) => cluster(s, dst),
                    _ => "passthrough-outbound".to_owned(),
                };
                set.count(
                    id,
                    "envoy_cluster_upstream_rq_xx",
                    &envoy_labels(s, src, &target, &class),
                    Some(src),
                );
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
    fn wasm_labels_are_sanitised_and_envoy_labels_are_not() {
        let start = 1_700_000_000;
        let ds = Dataset::generate(&Scenario::demo(), start, start + 120);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Osm, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        let has = |needle: &str| text.lines().any(|l| l.contains(needle));
        assert!(has(
            r#"destination_kind="Deployment",destination_name="store_v1",destination_pod="store_v1_"#
        ));
        assert!(!has(r#"destination_name="store.v1""#) && !has(r#"destination_name="store-v1""#));
        assert!(has(r#"source_name="node_agent""#));
        assert!(has(
            r#"destination_kind="Job",destination_name="report_28419360""#
        ));
        assert!(has(r#"envoy_cluster_name="shop/api|8080|local""#));
        assert!(has(
            r#"source_workload_kind="Deployment",source_workload_name="store.v1""#
        ));
        assert!(has(r#"envoy_cluster_name="passthrough-outbound""#));
        assert!(text.contains("osm_request_duration_ms_bucket{"));
        assert!(!text.contains("poller"), "unmeshed pods have no proxy");
        // whole milliseconds: every sum ends in .000
        assert!(text
            .lines()
            .filter(|l| l.starts_with("osm_request_duration_ms_sum"))
            .all(|l| l.split(' ').nth(1).unwrap().ends_with(".000")));
    }
}
