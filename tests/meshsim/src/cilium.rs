//! Cilium emitter: Hubble's httpV2 metrics `hubble_http_requests_total` and
//! `hubble_http_request_duration_seconds`, with `labelsContext` source/destination namespace,
//! workload and pod, as each node's cilium-agent exposes them.
//!
//! * Meshed pods are those under L7 visibility. A request leaving one is reported by its node's
//!   agent with `reporter="client"` (client latency); a request reaching one with
//!   `reporter="server"` (server latency). Between two such pods: both.
//! * Hubble knows every pod's identity: the peer of a report is named even when it has no L7
//!   visibility (an unmeshed caller or callee); clients outside the cluster and external hosts
//!   (`world`) have empty labels.
//! * `status` is the HTTP status; gRPC responses are 200 whatever their status; a reset is
//!   answered by the L7 proxy (Envoy) with 503 and timed.
//! * Durations are in seconds with the Go client's default buckets.
//! * Series belong to the node agents (scraped `namespace="kube-system"`, `pod="cilium-…"`), so a
//!   workload pod's restart does not reset them.
//! * A Job made by a CronJob is named after the CronJob.

use std::io::{self, Write};

use crate::emit::{emit, Family, Layout, SeriesSet};
use crate::openmetrics::Labels;
use crate::topology::{Outcome, PodId, Scenario};
use crate::traffic::Flow;
use crate::view::{workload_name, Side, View};
use crate::Dataset;

const FAMILIES: [Family; 2] = [
    ("hubble_http_requests", "counter", "Count of HTTP requests"),
    (
        "hubble_http_request_duration_seconds",
        "histogram",
        "Quantiles of HTTP request duration in seconds",
    ),
];

/// The cilium-agent pods, one per node.
const AGENTS: [&str; 3] = ["cilium-8xq2z", "cilium-bn4kd", "cilium-t7wfs"];

/// The node (agent index) a pod runs on.
fn node(s: &Scenario, pod: PodId) -> usize {
    let ip = &s.pods[pod].ip;
    ip.split('.')
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        % AGENTS.len()
}

/// Context labels of one end; empty for the world.
fn end_labels(l: &mut Labels, s: &Scenario, end: &str, pod: Option<PodId>) {
    let (ns, name, workload) = match pod {
        Some(p) => {
            let w = s.owner(p);
            (
                w.namespace.clone(),
                s.pods[p].name.clone(),
                workload_name(&w.name, w.kind),
            )
        }
        None => Default::default(),
    };
    l.push(&format!("{end}_namespace"), &ns)
        .push(&format!("{end}_pod"), &name)
        .push(&format!("{end}_workload"), &workload);
}

/// Writes the dataset as Hubble metrics in OpenMetrics text.
pub(crate) fn write(ds: &Dataset, out: &mut dyn Write) -> io::Result<()> {
    let s = ds.scenario();
    emit(
        ds,
        Layout::of(View::Cilium, true),
        &FAMILIES,
        out,
        |set: &mut SeriesSet, id, f: &Flow| {
            let call = &s.calls[usize::from(f.call)];
            let grpc = call
                .outcomes
                .iter()
                .any(|(o, _)| matches!(o, Outcome::Grpc(_)));
            let status = match f.outcome {
                Outcome::Http(c) => c.to_string(),
                Outcome::Grpc(_) => "200".to_owned(),
                Outcome::Reset => "503".to_owned(),
            };
            let mut reports = Vec::new();
            if let Some(src) = f.src.filter(|&p| s.meshed(p)) {
                reports.push(("client", node(s, src), Side::Client));
            }
            if let Some(dst) = f.dst.filter(|&p| s.meshed(p)) {
                reports.push(("server", node(s, dst), Side::Server));
            }
            for (reporter, agent, side) in reports {
                let mut context = Labels::default();
                end_labels(&mut context, s, "source", f.src);
                end_labels(&mut context, s, "destination", f.dst);
                context.push("method", if grpc { "POST" } else { "GET" });
                let scrape = |l: &mut Labels| {
                    l.push("instance", &format!("172.18.0.{}:9965", agent + 2))
                        .push("job", "hubble-metrics")
                        .push("namespace", "kube-system")
                        .push("pod", AGENTS[agent]);
                };
                let mut counter = context.clone();
                counter
                    .push("protocol", if grpc { "HTTP/2" } else { "HTTP/1.1" })
                    .push("reporter", reporter)
                    .push("status", &status);
                scrape(&mut counter);
                set.count(id, "hubble_http_requests_total", &counter, None);
                let mut histogram = context;
                histogram.push("reporter", reporter);
                scrape(&mut histogram);
                set.observe(
                    id,
                    "hubble_http_request_duration_seconds",
                    &histogram,
                    None,
                    side,
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
    fn output_has_both_reporters_seconds_and_unmeshed_peers() {
        let start = 1_700_000_000;
        let ds = Dataset::generate(&Scenario::demo(), start, start + 120);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Cilium, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        check(&text).unwrap();
        let has = |needle: &str| text.lines().any(|l| l.contains(needle));
        assert!(has(r#"reporter="client",status="200""#));
        assert!(has(r#"reporter="server",status="503""#));
        assert!(has(r#"{source_namespace="legacy",source_pod="poller-"#));
        assert!(has(r#"destination_workload="mainframe""#));
        assert!(has(
            r#"{source_namespace="",source_pod="",source_workload="",destination_namespace="platform""#
        ));
        assert!(has(
            r#"destination_workload="report",method="GET",protocol"#
        ));
        assert!(has(r#"le="0.005""#) && has(r#"le="10""#) && has(r#"le="2.5""#));
        assert!(text.contains("hubble_http_request_duration_seconds_sum{"));
    }
}
