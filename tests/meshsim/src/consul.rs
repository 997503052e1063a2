//! Consul emitter: the Envoy statistics of every meshed pod's Consul sidecar, with the stats tags
//! Consul's bootstrap configures, scraped with the pod's `namespace`, `pod` and `app`.
//!
//! * Every pod is registered as the Consul service of the Kubernetes Service selecting it
//!   (`consul_source_service` on all of its proxy's stats, Consul namespace `default`,
//!   datacenter `dc1`).
//! * Server side: the inbound listener (`envoy_http_conn_manager_prefix="public_listener"`)
//!   counts every request the pod served, `envoy_http_downstream_rq_xx` and `_time` (server
//!   latency), including unmeshed callers (permissive mTLS), plus the `local_app` cluster's
//!   counters (the same requests again: a double-counting trap for queries that sum every
//!   cluster of a proxy).
//! * Client side: the caller's upstream cluster for the callee's service,
//!   `envoy_cluster_upstream_rq_xx` and `_time` (client latency) with `consul_destination_*` tags;
//!   calls to unmeshed or external hosts leave through `original-destination` without them.
//! * Classes: the status' first digit; gRPC is `2`; a reset is answered with 503 (`5`) and timed.

use std::io::{self, Write};

use crate::emit::{emit, Family, Layout, SeriesSet};
use crate::openmetrics::Labels;
use crate::topology::{Outcome, PodId, Scenario};
use crate::traffic::Flow;
use crate::view::{Side, View};
use crate::Dataset;

const FAMILIES: [Family; 4] = [
    (
        "envoy_http_downstream_rq_xx",
        "unknown",
        "Envoy counter http.*.downstream_rq_xx",
    ),
    (
        "envoy_http_downstream_rq_time",
        "histogram",
        "Envoy histogram http.*.downstream_rq_time",
    ),
    (
        "envoy_cluster_upstream_rq_xx",
        "unknown",
        "Envoy counter cluster.*.upstream_rq_xx",
    ),
    (
        "envoy_cluster_upstream_rq_time",
        "histogram",
        "Envoy histogram cluster.*.upstream_rq_time",
    ),
];

const DATACENTER: &str = "dc1";
const TRUST_DOMAIN: &str = "7c3b1a62-5d0e-4f8a-9b1c-2e6d4f0a8b35.consul";

/// The Consul service a meshed pod is registered as.
fn service(s: &Scenario, pod: PodId) -> &str {
    s.service_of(pod)
        .map_or(s.owner(pod).name.as_str(), |svc| svc.name.as_str())
}

/// The fixed tags of a pod's proxy.
fn proxy_labels(s: &Scenario, pod: PodId) -> Labels {
    let svc = service(s, pod);
    let mut l = Labels::default();
    l.push("consul_source_service", svc)
        .push("consul_source_namespace", "default")
        .push("consul_source_datacenter", DATACENTER)
        .push("local_cluster", svc);
    l
}

/// The scrape labels of a pod.
fn scrape(l: &mut Labels, s: &Scenario, pod: PodId) {
    let w = s.owner(pod);
    l.push("app", &w.app)
        .push("job", "consul-connect-envoy")
        .push("namespace", &w.namespace)
        .push("pod", &s.pods[pod].name);
}

/// Envoy's response code class of an outcome.
pub(crate) fn class(outcome: Outcome) -> String {
    match outcome {
        Outcome::Http(c) => (c / 100).to_string(),
        Outcome::Grpc(_) => "2".to_owned(),
        Outcome::Reset => "5".to_owned(),
    }
}

/// Writes the dataset as Consul Envoy statistics in OpenMetrics text.
pub(crate) fn write(ds: &Dataset, out: &mut dyn Write) -> io::Result<()> {
    let s = ds.scenario();
    emit(
        ds,
        Layout::of(View::Consul, false),
        &FAMILIES,
        out,
        |set: &mut SeriesSet, id, f: &Flow| {
            let class = class(f.outcome);
            let meshed = |p: Option<PodId>| p.filter(|&p| s.meshed(p));
            if let Some(dst) = meshed(f.dst) {
                let mut l = proxy_labels(s, dst);
                l.push("envoy_http_conn_manager_prefix", "public_listener");
                let mut h = l.clone();
                scrape(&mut h, s, dst);
                set.observe(
                    id,
                    "envoy_http_downstream_rq_time",
                    &h,
                    Some(dst),
                    Side::Server,
                );
                l.push("envoy_response_code_class", &class);
                scrape(&mut l, s, dst);
                set.count(id, "envoy_http_downstream_rq_xx", &l, Some(dst));
                let mut local = proxy_labels(s, dst);
                local
                    .push("envoy_cluster_name", "local_app")
                    .push("envoy_response_code_class", &class);
                scrape(&mut local, s, dst);
                set.count(id, "envoy_cluster_upstream_rq_xx", &local, Some(dst));
            }
            if let Some(src) = meshed(f.src) {
                let mut l = proxy_labels(s, src);
                match meshed(f.dst) {
                    Some(dst) => {
                        let target = service(s, dst);
                        l.push("consul_destination_service", target)
                            .push("consul_destination_namespace", "default")
                            .push("consul_destination_datacenter", DATACENTER)
                            .push("consul_destination_routing_type", "internal")
                            .push("consul_destination_trust_domain", TRUST_DOMAIN)
                            .push("envoy_cluster_name", target);
                        let mut h = l.clone();
                        scrape(&mut h, s, src);
                        set.observe(
                            id,
                            "envoy_cluster_upstream_rq_time",
                            &h,
                            Some(src),
                            Side::Client,
                        );
                    }
                    None => {
                        l.push("envoy_cluster_name", "original-destination");
                    }
                }
                l.push("envoy_response_code_class", &class);
                scrape(&mut l, s, src);
                set.count(id, "envoy_cluster_upstream_rq_xx", &l, Some(src));
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
    fn output_has_listener_and_cluster_stats() {
        let start = 1_700_000_000;
        let ds = Dataset::generate(&Scenario::demo(), start, start + 120);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Consul, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        let has = |needle: &str| text.lines().any(|l| l.contains(needle));
        assert!(has(
            r#"envoy_http_downstream_rq_xx{consul_source_service="api",consul_source_namespace="default",consul_source_datacenter="dc1",local_cluster="api",envoy_http_conn_manager_prefix="public_listener",envoy_response_code_class="5""#
        ));
        assert!(has(
            r#"envoy_cluster_upstream_rq_xx{consul_source_service="web",consul_source_namespace="default",consul_source_datacenter="dc1",local_cluster="web",consul_destination_service="api""#
        ));
        assert!(has(r#"envoy_cluster_name="local_app""#));
        assert!(has(r#"envoy_cluster_name="original-destination""#));
        assert!(has(r#"consul_destination_service="node-agent""#));
        assert!(has("envoy_cluster_upstream_rq_time_bucket{"));
        assert!(text.contains("# TYPE envoy_cluster_upstream_rq_xx unknown"));
    }
}
