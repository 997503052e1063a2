//! Linkerd 2.x emitter: the `response_total` and `response_latency_ms` series each meshed pod's
//! proxy would expose, as scraped by linkerd-viz's Prometheus every [`STEP_SECS`].
//!
//! * Inbound series live on the serving pod and describe the caller only by `client_id` (its
//!   service-account identity) or, for unmeshed callers, by `tls="no_identity"`.
//! * Outbound series live on the calling pod and carry `dst_*` labels (namespace, service, pod,
//!   service account, owner) when the destination is meshed; calls to unmeshed pods and external
//!   hosts carry none.
//! * Every series is written at every step from the dataset start (value 0) on, so Prometheus'
//!   `increase()` never extrapolates. A restarting pod's series all drop to 0 at its restart step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};

use crate::openmetrics::{write_eof, write_family, Labels, Scrape};
use crate::quantile::bucket_index;
use crate::topology::{Call, Kind, Outcome, PodId, Scenario, Target};
use crate::traffic::{Flow, Flows};
use crate::{Dataset, STEP_SECS};

/// Upper bounds (ms) of `response_latency_ms` buckets, as the proxy exports them (plus `+Inf`).
pub(crate) const LATENCY_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// Linkerd's identity trust domain suffix for `client_id`.
const IDENTITY_SUFFIX: &str = "serviceaccount.identity.linkerd.cluster.local";

/// The proxy's default response classifier (linkerd2-proxy `classify.rs`): 5xx, gRPC statuses
/// Unknown, DeadlineExceeded, Internal, Unavailable, DataLoss, and stream errors are failures.
fn classification(outcome: Outcome) -> &'static str {
    let failure = match outcome {
        Outcome::Http(status) => status / 100 == 5,
        Outcome::Grpc(status) => [2, 4, 13, 14, 15].contains(&status),
        Outcome::Reset => true,
    };
    if failure {
        "failure"
    } else {
        "success"
    }
}

/// Which proxy reported a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Direction {
    Inbound,
    Outbound,
}

/// The labels of one proxy's view of one kind of traffic, minus response labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Stream {
    /// The reporting (scraped) pod.
    pod: PodId,
    direction: Direction,
    /// Interned `authority`.
    authority: usize,
    /// Inbound: the meshed caller's interned identity; outbound: the meshed destination pod.
    peer: Option<usize>,
}

/// The series one flow increments at one proxy.
#[derive(Debug, Clone, Copy)]
struct Increment {
    /// Index of the `response_total` series.
    counter: usize,
    /// Index of the latency histogram, when the flow has responses.
    histogram: Option<usize>,
    /// Whether the proxy is the server's (records server latency) or the client's.
    inbound: bool,
}

/// Every series of a dataset, and which ones each flow increments.
struct Series {
    /// Every stream, sorted, with a call that produced it (for rendering labels).
    streams: Vec<(Stream, u16)>,
    /// `response_total` series: (stream index, outcome), sorted.
    counters: Vec<(usize, Outcome)>,
    /// Streams with at least one latency observation (stream indices, sorted).
    histograms: Vec<usize>,
    /// Interned `authority` values.
    authorities: Vec<String>,
    /// Interned `client_id` values.
    identities: Vec<String>,
    /// Per flow id: the series it increments (outbound, inbound).
    increments: Vec<[Option<Increment>; 2]>,
}

/// Returns the index of `value` in `table`, appending it first if missing.
fn intern(table: &mut Vec<String>, value: String) -> usize {
    table.iter().position(|v| *v == value).unwrap_or_else(|| {
        table.push(value);
        table.len() - 1
    })
}

impl Series {
    /// Finds every series the dataset's flows create.
    fn discover(s: &Scenario, flows: &Flows) -> Series {
        let mut identities = Vec::new();
        let workload_identity: Vec<usize> = (0..s.workloads.len())
            .map(|w| intern(&mut identities, identity(s, w)))
            .collect();
        let mut authorities = Vec::new();
        let flow_streams: Vec<Vec<Stream>> = flows
            .all()
            .iter()
            .map(|f| {
                let call = &s.calls[usize::from(f.call)];
                let authority = intern(&mut authorities, s.authority(call, f.dst));
                streams_of(s, f, authority, &workload_identity).collect()
            })
            .collect();
        let mut streams: BTreeMap<Stream, u16> = BTreeMap::new();
        let mut counters: BTreeSet<(Stream, Outcome)> = BTreeSet::new();
        let mut observed: BTreeSet<Stream> = BTreeSet::new();
        for (f, list) in flows.all().iter().zip(&flow_streams) {
            for &stream in list {
                streams.entry(stream).or_insert(f.call);
                counters.insert((stream, f.outcome));
                if f.outcome.has_response() {
                    observed.insert(stream);
                }
            }
        }
        let streams: Vec<(Stream, u16)> = streams.into_iter().collect();
        let stream_index: HashMap<Stream, usize> = streams
            .iter()
            .enumerate()
            .map(|(i, (st, _))| (*st, i))
            .collect();
        let counters: Vec<(usize, Outcome)> = counters
            .into_iter()
            .map(|(st, o)| (stream_index[&st], o))
            .collect();
        let counter_index: HashMap<(usize, Outcome), usize> =
            counters.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let histograms: Vec<usize> = observed.into_iter().map(|st| stream_index[&st]).collect();
        let histogram_index: HashMap<usize, usize> = histograms
            .iter()
            .enumerate()
            .map(|(i, &st)| (st, i))
            .collect();
        let increments = flows
            .all()
            .iter()
            .zip(&flow_streams)
            .map(|(f, list)| {
                let mut incs = [None; 2];
                for (slot, stream) in incs.iter_mut().zip(list) {
                    let st = stream_index[stream];
                    *slot = Some(Increment {
                        counter: counter_index[&(st, f.outcome)],
                        histogram: histogram_index.get(&st).copied(),
                        inbound: stream.direction == Direction::Inbound,
                    });
                }
                incs
            })
            .collect();
        Series {
            streams,
            counters,
            histograms,
            authorities,
            identities,
            increments,
        }
    }
}

/// The streams a flow increments: outbound at a meshed caller, inbound at a meshed server.
fn streams_of(
    s: &Scenario,
    f: &Flow,
    authority: usize,
    workload_identity: &[usize],
) -> impl Iterator<Item = Stream> {
    let (src, dst) = (
        f.src.filter(|&p| s.meshed(p)),
        f.dst.filter(|&p| s.meshed(p)),
    );
    let outbound = src.map(|pod| Stream {
        pod,
        direction: Direction::Outbound,
        authority,
        peer: dst,
    });
    let inbound = dst.map(|pod| Stream {
        pod,
        direction: Direction::Inbound,
        authority,
        peer: src.map(|p| workload_identity[s.pods[p].workload]),
    });
    outbound.into_iter().chain(inbound)
}

/// Labels the linkerd-viz scrape config adds for a pod: `namespace`, `pod`, the owner label, the
/// copied pod labels, `control_plane_ns`, `instance` and `job`.
fn scrape_labels(s: &Scenario, pod: PodId) -> Labels {
    let p = &s.pods[pod];
    let w = s.owner(pod);
    let mut l = Labels::default();
    l.push("namespace", &w.namespace).push("pod", &p.name);
    l.push(owner_label(w.kind), &w.name);
    match w.kind {
        Kind::Deployment => {
            l.push(
                "pod_template_hash",
                w.template_hash.as_deref().unwrap_or_default(),
            );
        }
        Kind::StatefulSet => {
            l.push(
                "controller_revision_hash",
                w.revision_hash.as_deref().unwrap_or_default(),
            );
            l.push("statefulset_kubernetes_io_pod_name", &p.name);
        }
        Kind::DaemonSet => {
            l.push(
                "controller_revision_hash",
                w.revision_hash.as_deref().unwrap_or_default(),
            );
            l.push("pod_template_generation", "1");
        }
        // The pod label `job-name` is copied too: a decoy next to the real `k8s_job`.
        Kind::Job => {
            l.push("job_name", &w.name);
        }
        Kind::Namespace | Kind::Pod | Kind::Service => {
            unreachable!("{:?} does not own pods", w.kind)
        }
    }
    l.push("app", &w.app)
        .push("control_plane_ns", "linkerd")
        .push("instance", &format!("{}:4191", p.ip))
        .push("job", "linkerd-proxy");
    l
}

/// Linkerd's label for a pod owner kind (`Job` becomes `k8s_job`).
fn owner_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Deployment => "deployment",
        Kind::StatefulSet => "statefulset",
        Kind::DaemonSet => "daemonset",
        Kind::Job => "k8s_job",
        Kind::Namespace | Kind::Pod | Kind::Service => unreachable!("{kind:?} does not own pods"),
    }
}

/// A meshed pod's identity as the proxy labels it.
fn identity(s: &Scenario, workload: usize) -> String {
    let w = &s.workloads[workload];
    format!("{}.{}.{IDENTITY_SUFFIX}", w.service_account, w.namespace)
}

/// Scrape labels plus the proxy's traffic labels (no response labels).
fn stream_labels(s: &Scenario, series: &Series, stream: &Stream, call: &Call) -> Labels {
    let mut l = scrape_labels(s, stream.pod);
    let authority = &series.authorities[stream.authority];
    match stream.direction {
        Direction::Inbound => {
            let target = format!("{}:{}", s.pods[stream.pod].ip, s.target_port(call));
            l.push("direction", "inbound")
                .push("authority", authority)
                .push("target_addr", &target)
                .push("srv_kind", "default")
                .push("srv_name", "all-unauthenticated");
            match stream.peer {
                Some(client) => l
                    .push("tls", "true")
                    .push("client_id", &series.identities[client]),
                None => l
                    .push("tls", "no_identity")
                    .push("no_tls_reason", "not_provided_by_remote"),
            };
        }
        Direction::Outbound => {
            l.push("direction", "outbound").push("authority", authority);
            match stream.peer {
                Some(dst) => {
                    let w = s.owner(dst);
                    l.push("dst_control_plane_ns", "linkerd")
                        .push(&format!("dst_{}", owner_label(w.kind)), &w.name)
                        .push("dst_namespace", &w.namespace)
                        .push("dst_pod", &s.pods[dst].name);
                    if let Some(hash) = &w.template_hash {
                        l.push("dst_pod_template_hash", hash);
                    }
                    if let Target::Service(svc) = call.to {
                        l.push("dst_service", &s.services[svc].name);
                    }
                    l.push("dst_serviceaccount", &w.service_account)
                        .push("tls", "true")
                        .push("server_id", &identity(s, s.pods[dst].workload));
                }
                None => {
                    l.push("tls", "no_identity")
                        .push("no_tls_reason", "not_provided_by_service_discovery");
                }
            }
        }
    }
    l
}

/// Response labels of `response_total`: `status_code`, `grpc_status`, `classification`, `error`.
fn response_labels(base: &Labels, outcome: Outcome) -> Labels {
    let mut l = base.clone();
    match outcome {
        Outcome::Http(status) => {
            l.push("status_code", &status.to_string());
        }
        Outcome::Grpc(status) => {
            l.push("status_code", "200")
                .push("grpc_status", &status.to_string());
        }
        Outcome::Reset => {}
    }
    l.push("classification", classification(outcome));
    if outcome == Outcome::Reset {
        l.push("error", "unclassified");
    }
    l
}

/// Running state of one latency histogram.
#[derive(Clone)]
struct Histogram {
    /// Per-bucket (not cumulative) counts, `+Inf` last.
    buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
    sum_us: u64,
}

impl Histogram {
    const EMPTY: Histogram = Histogram {
        buckets: [0; LATENCY_BUCKETS_MS.len() + 1],
        sum_us: 0,
    };
}

/// Writes the dataset as Linkerd proxy metrics in OpenMetrics text.
pub(crate) fn write(ds: &Dataset, out: &mut dyn Write) -> io::Result<()> {
    let s = ds.scenario();
    let flows = Flows::new(s, ds.traffic());
    let series = Series::discover(s, &flows);

    // Pre-render every sample line's `name{labels}`.
    let bases: Vec<Labels> = series
        .streams
        .iter()
        .map(|(st, call)| stream_labels(s, &series, st, &s.calls[usize::from(*call)]))
        .collect();
    let counter_names: Vec<String> = series
        .counters
        .iter()
        .map(|&(st, o)| response_labels(&bases[st], o).series("response_total"))
        .collect();
    let le: Vec<String> = LATENCY_BUCKETS_MS
        .iter()
        .map(f64::to_string)
        .chain(["+Inf".to_owned()])
        .collect();
    let histogram_names: Vec<(Vec<String>, String, String)> = series
        .histograms
        .iter()
        .map(|&st| {
            let b = &bases[st];
            (
                le.iter()
                    .map(|le| b.with("le", le).series("response_latency_ms_bucket"))
                    .collect(),
                b.series("response_latency_ms_count"),
                b.series("response_latency_ms_sum"),
            )
        })
        .collect();

    write_family(
        out,
        "response_total",
        "counter",
        "Total count of HTTP responses.",
    )?;
    write_family(
        out,
        "response_latency_ms",
        "histogram",
        "Elapsed times between a request's headers being received and its response stream completing",
    )?;

    let mut counters = vec![0u64; series.counters.len()];
    let mut histograms = vec![Histogram::EMPTY; series.histograms.len()];
    let mut scrape = Scrape::default();
    for k in 0..=ds.traffic().steps() {
        let offset = k as i64 * STEP_SECS;
        if k > 0 {
            // A restarted proxy starts every counter over.
            for (c, &(st, _)) in series.counters.iter().enumerate() {
                if s.restarts_at(series.streams[st].0.pod, offset) {
                    counters[c] = 0;
                }
            }
            for (h, &st) in series.histograms.iter().enumerate() {
                if s.restarts_at(series.streams[st].0.pod, offset) {
                    histograms[h] = Histogram::EMPTY;
                }
            }
            for r in ds.traffic().step(k) {
                for inc in series.increments[flows.id(s, r)].iter().flatten() {
                    counters[inc.counter] += 1;
                    if let (Some((server_us, client_us)), Some(h)) = (r.latency_us(), inc.histogram)
                    {
                        let us = if inc.inbound { server_us } else { client_us };
                        let h = &mut histograms[h];
                        h.buckets[bucket_index(&LATENCY_BUCKETS_MS, us)] += 1;
                        h.sum_us += u64::from(us);
                    }
                }
            }
        }
        scrape.begin(ds.start() + offset);
        for (name, &v) in counter_names.iter().zip(&counters) {
            scrape.sample(name, v);
        }
        for ((buckets, count, sum), h) in histogram_names.iter().zip(&histograms) {
            let mut cumulative = 0;
            for (name, &n) in buckets.iter().zip(&h.buckets) {
                cumulative += n;
                scrape.sample(name, cumulative);
            }
            scrape.sample(count, cumulative);
            scrape.sample_milli(sum, h.sum_us);
        }
        scrape.write_to(out)?;
    }
    write_eof(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openmetrics::check;
    use crate::topology::Scenario;
    use crate::Mesh;

    const START: i64 = 1_700_000_000;

    fn render(minutes: i64) -> (Dataset, String) {
        let ds = Dataset::generate(&Scenario::demo(), START, START + minutes * 60);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Linkerd, &mut out).unwrap();
        (ds, String::from_utf8(out).unwrap())
    }

    #[test]
    fn classification_follows_the_proxy() {
        assert_eq!(classification(Outcome::Http(404)), "success");
        assert_eq!(classification(Outcome::Http(503)), "failure");
        assert_eq!(classification(Outcome::Grpc(5)), "success");
        assert_eq!(classification(Outcome::Grpc(14)), "failure");
        assert_eq!(classification(Outcome::Reset), "failure");
    }

    #[test]
    fn output_is_well_formed_and_complete() {
        let (ds, text) = render(3);
        let samples = check(&text).unwrap();
        let series = text
            .lines()
            .filter(|l| l.ends_with(&format!(" {START}")))
            .count();
        assert!(series > 100);
        // Every series at every step, from the start (value 0) to the end.
        assert_eq!(samples, series * (ds.traffic().steps() + 1));
        let mut names = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.ends_with(&format!(" {START}"))) {
            assert!(
                line.ends_with(&format!(" 0 {START}"))
                    || line.ends_with(&format!(" 0.000 {START}")),
                "{line}"
            );
            let name = &line[..=line.rfind('}').unwrap()];
            assert!(names.insert(name), "duplicate series {name}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn labels_carry_the_traps() {
        let (_, text) = render(1);
        let has = |needle: &str| text.lines().any(|l| l.contains(needle));
        assert!(has(r#"dst_deployment="store.v1""#));
        assert!(has(r#"dst_deployment="store-v1""#));
        assert!(has(r#"k8s_job="report-28419360""#));
        assert!(has(r#"dst_k8s_job="report-28419360""#));
        assert!(has(r#"dst_statefulset="db""#));
        assert!(has(r#"dst_daemonset="node-agent""#));
        assert!(has(r#"grpc_status="5",classification="success""#));
        assert!(has(r#"grpc_status="14",classification="failure""#));
        assert!(has(r#"status_code="404",classification="success""#));
        assert!(has(r#"classification="failure",error="unclassified""#));
        assert!(has(r#"le="+Inf""#) && has(r#"le="50000""#) && has(r#"le="1""#));
        // The unmeshed caller shows up only inbound; the external host only outbound, bare.
        assert!(has(
            r#"direction="inbound",authority="api.shop.svc.cluster.local:8080",target_addr"#
        ));
        assert!(has("no_tls_reason=\"not_provided_by_remote\""));
        let external: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("rates.example.com"))
            .collect();
        assert!(!external.is_empty());
        assert!(external
            .iter()
            .all(|l| !l.contains("dst_") && l.contains("outbound")));
        assert!(!has(r#"namespace="legacy""#));
    }

    #[test]
    fn restarted_pod_drops_to_zero() {
        let (_, text) = render(20);
        let t = START + crate::demo::DB_RESTARTS[0];
        let line = |ts: i64| {
            text.lines()
                .find(|l| {
                    l.starts_with("response_total{")
                        && l.contains(r#"{namespace="shop",pod="db-1","#)
                        && l.contains(r#"status_code="200""#)
                        && l.ends_with(&format!(" {ts}"))
                })
                .map(|l| l.split(' ').nth_back(1).unwrap().parse::<u64>().unwrap())
                .unwrap()
        };
        assert!(line(t - STEP_SECS) > 100);
        assert_eq!(line(t), 0);
        assert!(line(t + 2 * STEP_SECS) > 0);
    }
}
