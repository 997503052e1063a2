//! Ground truth: the SMI values for any resource, edge and window, aggregated straight from the
//! simulated requests (never from emitted series or PromQL). The rules are on [`Truth`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::quantile::{bucket_index, histogram_quantile};
use crate::topology::{Kind, PodId, Res};
use crate::{Dataset, Mesh, STEP_SECS};

/// Edge direction, seen from the queried resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The resource called the peer.
    To,
    /// The peer called the resource.
    From,
}

/// The expected SMI metrics of one resource or edge over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// `success_count`.
    pub success: u64,
    /// `failure_count`.
    pub failure: u64,
    /// `[p50, p90, p99]` response latency in ms; `None` when nothing was observed in the window.
    pub latency_ms: Option<[f64; 3]>,
}

/// One expected edge of a resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedEdge {
    /// Whether the resource called the peer or the other way round.
    pub direction: Direction,
    /// The resource at the other end (same kind as the queried resource).
    pub peer: Res,
    /// Its metrics (measured at the caller: client side).
    pub expected: Expected,
}

/// Quantiles reported by SMI.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Ground truth of one dataset for one mesh (the mesh decides the latency bucket layout).
///
/// * Resource metrics are server side: every request served by the resource's meshed pods,
///   whoever called (unmeshed callers and clients outside the cluster included). Namespaces
///   aggregate all their meshed pods; workloads their pods.
/// * Edges are client side and need both ends meshed: `To` edges are calls made by the resource's
///   pods, `From` edges calls into its pods, and the peer is the other end's resource **of the
///   same kind**: a Deployment's calls to StatefulSet pods are not edges of that Deployment (they
///   are edges of its pods and namespace). A resource calling itself has both a `To` and a `From`
///   edge with the same numbers. Calls to unmeshed pods or external hosts are never edges.
/// * Failure: HTTP 5xx, gRPC 2/4/13/14/15, or no response (reset); everything else succeeds.
/// * Latency: `histogram_quantile` on the window's bucket increments (server-side observations
///   for resources, client-side ones — server time plus proxy/network overhead — for edges);
///   resets have no latency observation.
/// * Listing: a resource (edge) is listed when it served (carried) at least one request anywhere
///   in the dataset, since its series then exist for the whole dataset; idle ones show zeros and
///   no latency.
pub struct Truth<'a> {
    ds: &'a Dataset,
    bounds: &'static [f64],
    /// `(meshed caller pod, meshed serving pod)`; `None` = unmeshed, outside or external.
    keys: Vec<(Option<PodId>, Option<PodId>)>,
    /// Running totals per key and step: see [`Truth::slot`].
    prefix: Vec<u64>,
}

/// Column of the success count in a row.
const SUCCESS: usize = 0;
/// Column of the failure count in a row.
const FAILURE: usize = 1;
/// Column where the server-side bucket counts start.
const SERVER: usize = 2;

impl<'a> Truth<'a> {
    /// Aggregates the dataset's requests per (caller pod, server pod) pair and step.
    pub(crate) fn new(ds: &'a Dataset, mesh: Mesh) -> Truth<'a> {
        let s = ds.scenario();
        let bounds = mesh.latency_buckets_ms();
        let meshed = |p: Option<PodId>| p.filter(|&p| s.meshed(p));
        let mut index = BTreeMap::new();
        for r in ds.traffic().all() {
            let key = (meshed(r.src_pod()), meshed(r.dst_pod()));
            if key.0.is_some() || key.1.is_some() {
                let next = index.len();
                index.entry(key).or_insert(next);
            }
        }
        let mut keys = vec![(None, None); index.len()];
        for (&key, &i) in &index {
            keys[i] = key;
        }
        let steps = ds.traffic().steps();
        let mut truth = Truth {
            ds,
            bounds,
            keys,
            prefix: Vec::new(),
        };
        let width = truth.width();
        truth.prefix = vec![0; truth.keys.len() * (steps + 1) * width];
        for k in 1..=steps {
            for r in ds.traffic().step(k) {
                let Some(&i) = index.get(&(meshed(r.src_pod()), meshed(r.dst_pod()))) else {
                    continue;
                };
                let at = truth.slot(i, k);
                let row = &mut truth.prefix[at..at + width];
                row[if r.outcome.is_failure() {
                    FAILURE
                } else {
                    SUCCESS
                }] += 1;
                if let Some((server_us, client_us)) = r.latency_us() {
                    let nb = bounds.len() + 1;
                    row[SERVER + bucket_index(bounds, server_us)] += 1;
                    row[SERVER + nb + bucket_index(bounds, client_us)] += 1;
                }
            }
        }
        // Turn per-step counts into running totals.
        for i in 0..truth.keys.len() {
            for k in 1..=steps {
                let (prev, cur) = (truth.slot(i, k - 1), truth.slot(i, k));
                for j in 0..width {
                    truth.prefix[cur + j] += truth.prefix[prev + j];
                }
            }
        }
        truth
    }

    /// Values per row: success, failure, server buckets, client buckets.
    fn width(&self) -> usize {
        SERVER + 2 * (self.bounds.len() + 1)
    }

    /// Offset of the row holding key `i`'s totals up to and including step `k`.
    fn slot(&self, i: usize, k: usize) -> usize {
        (i * (self.ds.traffic().steps() + 1) + k) * self.width()
    }

    /// Steps `(from, to]` covered by the window `(end - window, end]`.
    fn steps(&self, end: i64, window: i64) -> (usize, usize) {
        let (start, last) = (self.ds.start(), self.ds.end());
        assert!(
            end % STEP_SECS == 0 && window % STEP_SECS == 0 && window > 0,
            "end ({end}) and window ({window}) must be positive multiples of {STEP_SECS}s"
        );
        assert!(
            end - window >= start && end <= last,
            "window ({}, {end}] is outside the dataset [{start}, {last}]",
            end - window
        );
        (
            ((end - window - start) / STEP_SECS) as usize,
            ((end - start) / STEP_SECS) as usize,
        )
    }

    /// Sums the rows of the keys (by index) selected by `pick` over steps `(from, to]`.
    fn sum(&self, (from, to): (usize, usize), pick: impl Fn(usize) -> bool) -> Vec<u64> {
        let mut acc = vec![0; self.width()];
        for i in (0..self.keys.len()).filter(|&i| pick(i)) {
            let (a, b) = (self.slot(i, from), self.slot(i, to));
            for (j, v) in acc.iter_mut().enumerate() {
                *v += self.prefix[b + j] - self.prefix[a + j];
            }
        }
        acc
    }

    /// Predicate selecting the keys served by one of `pods`.
    fn served_by<'p>(&'p self, pods: &'p [PodId]) -> impl Fn(usize) -> bool + 'p {
        move |i| self.keys[i].1.is_some_and(|d| pods.contains(&d))
    }

    /// Keys of each (direction, peer) edge of the resource of kind `kind` made of `pods`.
    fn edge_keys(&self, kind: Kind, pods: &[PodId]) -> BTreeMap<(Direction, Res), Vec<usize>> {
        let s = self.ds.scenario();
        let mut edges: BTreeMap<(Direction, Res), Vec<usize>> = BTreeMap::new();
        for (i, &(src, dst)) in self.keys.iter().enumerate() {
            let (Some(src), Some(dst)) = (src, dst) else {
                continue;
            };
            if pods.contains(&src) {
                if let Some(peer) = s.resource_of(dst, kind) {
                    edges.entry((Direction::To, peer)).or_default().push(i);
                }
            }
            if pods.contains(&dst) {
                if let Some(peer) = s.resource_of(src, kind) {
                    edges.entry((Direction::From, peer)).or_default().push(i);
                }
            }
        }
        edges
    }

    /// Metrics from summed rows, with server-side (`client == false`) or client-side latency.
    fn expected(&self, row: &[u64], client: bool) -> Expected {
        let nb = self.bounds.len() + 1;
        let from = if client { SERVER + nb } else { SERVER };
        let counts = &row[from..from + nb];
        let [p50, p90, p99] = QUANTILES.map(|q| histogram_quantile(q, self.bounds, counts));
        Expected {
            success: row[SUCCESS],
            failure: row[FAILURE],
            latency_ms: p50
                .zip(p90)
                .zip(p99)
                .map(|((p50, p90), p99)| [p50, p90, p99]),
        }
    }

    /// The whole dataset as a step range.
    fn everything(&self) -> (usize, usize) {
        (0, self.ds.traffic().steps())
    }

    /// Meshed pods of a resource (empty when unknown).
    fn pods(&self, r: &Res) -> Vec<PodId> {
        let s = self.ds.scenario();
        s.resources(r.kind)
            .into_iter()
            .find(|(res, _)| res == r)
            .map(|(_, pods)| pods.into_iter().filter(|&p| s.meshed(p)).collect())
            .unwrap_or_default()
    }

    /// Server-side metrics of a resource over `(end - window, end]` (zeros/`None` if unknown).
    ///
    /// # Panics
    /// If `end`/`window` are not multiples of [`STEP_SECS`] or the window leaves the dataset.
    pub fn resource(&self, r: &Res, end: i64, window: i64) -> Expected {
        let pods = self.pods(r);
        let row = self.sum(self.steps(end, window), self.served_by(&pods));
        self.expected(&row, false)
    }

    /// Every resource of `kind` that served traffic in the dataset, optionally only those in
    /// `namespace` (for [`Kind::Namespace`]: only that namespace), sorted by (namespace, name).
    ///
    /// # Panics
    /// As [`Truth::resource`].
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        end: i64,
        window: i64,
    ) -> Vec<(Res, Expected)> {
        let s = self.ds.scenario();
        let mut out: Vec<(Res, Expected)> = s
            .resources(kind)
            .into_iter()
            .filter(|(r, _)| match namespace {
                None => true,
                Some(ns) if kind == Kind::Namespace => r.name == ns,
                Some(ns) => r.namespace.as_deref() == Some(ns),
            })
            .filter(|(r, _)| {
                let pods = self.pods(r);
                let row = self.sum(self.everything(), self.served_by(&pods));
                row[SUCCESS] + row[FAILURE] > 0
            })
            .map(|(r, _)| {
                let e = self.resource(&r, end, window);
                (r, e)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Edges of a resource over `(end - window, end]`, sorted by (direction, peer): every peer of
    /// the same kind that exchanged at least one request with it in the dataset, both ends meshed.
    ///
    /// # Panics
    /// As [`Truth::resource`].
    pub fn edges(&self, r: &Res, end: i64, window: i64) -> Vec<ExpectedEdge> {
        let range = self.steps(end, window);
        self.edge_keys(r.kind, &self.pods(r))
            .into_iter()
            .filter_map(|((direction, peer), keys)| {
                let total = self.sum(self.everything(), |i| keys.contains(&i));
                (total[SUCCESS] + total[FAILURE] > 0).then(|| ExpectedEdge {
                    direction,
                    peer,
                    expected: self.expected(&self.sum(range, |i| keys.contains(&i)), true),
                })
            })
            .collect()
    }

    /// The latency aggregates the truth reports for a resource: its own (server side) and one per
    /// edge (client side), as (keys, client side?).
    #[cfg(test)]
    fn aggregates(&self, r: &Res) -> Vec<(Vec<usize>, bool)> {
        let pods = self.pods(r);
        let served = self.served_by(&pods);
        let own = (0..self.keys.len()).filter(|&i| served(i)).collect();
        let edges = self.edge_keys(r.kind, &pods).into_values();
        std::iter::once((own, false))
            .chain(edges.map(|keys| (keys, true)))
            .collect()
    }

    /// Per-bucket latency counts of an aggregate over a window.
    #[cfg(test)]
    fn bucket_counts(
        &self,
        (keys, client): &(Vec<usize>, bool),
        end: i64,
        window: i64,
    ) -> Vec<u64> {
        let nb = self.bounds.len() + 1;
        let col = if *client { SERVER + nb } else { SERVER };
        let (from, to) = self.steps(end, window);
        let mut counts = vec![0; nb];
        for &i in keys {
            let (a, b) = (self.slot(i, from) + col, self.slot(i, to) + col);
            for (j, c) in counts.iter_mut().enumerate() {
                *c += self.prefix[b + j] - self.prefix[a + j];
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Scenario;

    const START: i64 = 1_700_000_000;
    const ALL_KINDS: [Kind; 6] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::StatefulSet,
        Kind::Job,
    ];

    fn demo(minutes: i64) -> Dataset {
        Dataset::generate(&Scenario::demo(), START, START + minutes * 60)
    }

    #[test]
    fn resource_counts_match_a_direct_count() {
        let ds = demo(10);
        let truth = ds.truth(Mesh::Linkerd);
        let s = ds.scenario();
        let api_pods = &s.workloads.iter().find(|w| w.name == "api").unwrap().pods;
        let end = START + 300;
        let (mut ok, mut bad) = (0, 0);
        for k in 25..=30 {
            for r in ds.traffic().step(k) {
                if r.dst_pod().is_some_and(|d| api_pods.contains(&d)) {
                    if r.outcome.is_failure() {
                        bad += 1;
                    } else {
                        ok += 1;
                    }
                }
            }
        }
        let e = truth.resource(&Res::new(Kind::Deployment, "shop", "api"), end, 60);
        assert_eq!((e.success, e.failure), (ok, bad));
        assert!(ok > 0 && bad > 0);
        let [p50, p90, p99] = e.latency_ms.unwrap();
        assert!(p50 < p90 && p90 < p99, "{p50} {p90} {p99}");
    }

    #[test]
    fn unknown_resources_are_empty() {
        let ds = demo(5);
        let truth = ds.truth(Mesh::Linkerd);
        let none = Res::new(Kind::Deployment, "shop", "nope");
        let e = truth.resource(&none, START + 300, 300);
        assert_eq!(
            e,
            Expected {
                success: 0,
                failure: 0,
                latency_ms: None
            }
        );
        assert!(truth.edges(&none, START + 300, 300).is_empty());
        // Unmeshed workloads have no series at all.
        let poller = Res::new(Kind::Deployment, "legacy", "poller");
        assert_eq!(truth.resource(&poller, START + 300, 300).success, 0);
        assert!(truth
            .list(Kind::Namespace, Some("legacy"), START + 300, 300)
            .is_empty());
    }

    #[test]
    fn edges_follow_the_same_kind_rule() {
        let ds = demo(10);
        let truth = ds.truth(Mesh::Linkerd);
        let end = START + 600;
        let api = Res::new(Kind::Deployment, "shop", "api");
        let edges = truth.edges(&api, end, 300);
        let names: Vec<(Direction, &str)> = edges
            .iter()
            .map(|e| (e.direction, e.peer.name.as_str()))
            .collect();
        // db is a StatefulSet, poller is unmeshed, the report Job is not a Deployment.
        assert_eq!(
            names,
            [
                (Direction::To, "ledger"), // payments/ledger sorts before shop/*
                (Direction::To, "cart"),
                (Direction::To, "store-v1"),
                (Direction::To, "store.v1"),
                (Direction::From, "web"),
            ]
        );
        // The idle recommender edge is still listed, with nothing in a late window.
        let web = truth.edges(&Res::new(Kind::Deployment, "shop", "web"), end, 60);
        let rec = web.iter().find(|e| e.peer.name == "recommender").unwrap();
        assert_eq!(
            rec.expected,
            Expected {
                success: 0,
                failure: 0,
                latency_ms: None
            }
        );
        // Self edge: both directions.
        let ledger = truth.edges(&Res::new(Kind::Deployment, "payments", "ledger"), end, 60);
        let selfs: Vec<Direction> = ledger
            .iter()
            .filter(|e| e.peer.name == "ledger")
            .map(|e| e.direction)
            .collect();
        assert_eq!(selfs, [Direction::To, Direction::From]);
        let both: Vec<&Expected> = ledger
            .iter()
            .filter(|e| e.peer.name == "ledger")
            .map(|e| &e.expected)
            .collect();
        assert_eq!(both[0], both[1]);
    }

    #[test]
    fn namespace_edges_and_lists() {
        let ds = demo(10);
        let truth = ds.truth(Mesh::Linkerd);
        let end = START + 600;
        let ns: Vec<String> = truth
            .list(Kind::Namespace, None, end, 60)
            .into_iter()
            .map(|(r, _)| r.name)
            .collect();
        assert_eq!(ns, ["batch", "payments", "platform", "shop"]);
        let shop = truth.edges(&Res::namespace("shop"), end, 60);
        let peers: Vec<(Direction, &str)> = shop
            .iter()
            .map(|e| (e.direction, e.peer.name.as_str()))
            .collect();
        assert_eq!(
            peers,
            [
                (Direction::To, "payments"),
                (Direction::To, "shop"),
                (Direction::From, "batch"),
                (Direction::From, "platform"),
                (Direction::From, "shop"),
            ]
        );
        for kind in ALL_KINDS {
            assert!(!truth.list(kind, None, end, 60).is_empty(), "{kind:?}");
        }
    }

    /// Prometheus computes quantiles in floating point on rates, so when the rank equals a
    /// cumulative bucket count exactly and the next bucket is empty, it may answer either that
    /// bucket's upper bound or the next non-empty bucket's lower bound. The demo must avoid such
    /// ties for every window an e2e test might use (30 s to 15 min), at every aligned end of a
    /// 120-minute dataset (traffic depends only on the step index, so this covers every dataset
    /// of up to 120 minutes, whatever its start).
    #[test]
    fn demo_has_no_ambiguous_quantiles() {
        let ds = demo(120);
        let truth = ds.truth(Mesh::Linkerd);
        let mut checked = 0;
        let mut ambiguous = Vec::new();
        let aggregates: Vec<(Res, (Vec<usize>, bool))> = ALL_KINDS
            .iter()
            .flat_map(|&k| truth.list(k, None, START + 60, 60))
            .flat_map(|(r, _)| {
                truth
                    .aggregates(&r)
                    .into_iter()
                    .map(move |a| (r.clone(), a))
            })
            .collect();
        for window in [30, 60, 90, 120, 180, 300, 600, 900] {
            for end in (START + window..=ds.end()).step_by(STEP_SECS as usize) {
                for (r, aggregate) in &aggregates {
                    let counts = truth.bucket_counts(aggregate, end, window);
                    checked += 1;
                    if let Some(q) = tie(&counts) {
                        ambiguous.push((r.clone(), end - START, window, q, counts));
                    }
                }
            }
        }
        assert!(checked > 10_000);
        assert!(
            ambiguous.is_empty(),
            "{} ambiguous: {:?}",
            ambiguous.len(),
            &ambiguous[..ambiguous.len().min(5)]
        );
    }

    /// A quantile whose exact rank equals a cumulative count followed by an empty bucket.
    fn tie(counts: &[u64]) -> Option<f64> {
        let total: u64 = counts.iter().sum();
        let mut cum = 0;
        for (i, &c) in counts[..counts.len() - 1].iter().enumerate() {
            cum += c;
            for (q, num, den) in [(0.5, 1, 2), (0.9, 9, 10), (0.99, 99, 100)] {
                if cum > 0 && cum * den == total * num && counts[i + 1] == 0 {
                    return Some(q);
                }
            }
        }
        None
    }
}
