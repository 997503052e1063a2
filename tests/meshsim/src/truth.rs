//! Ground truth: the SMI values for any resource, edge and window, aggregated straight from the
//! simulated requests (never from emitted series or PromQL). The rules are on [`Truth`]; what
//! differs between meshes comes from the [`View`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::quantile::{bucket_index, histogram_quantile};
use crate::topology::{Kind, Outcome, PodId, Res};
use crate::view::{Side, View};
use crate::{Dataset, STEP_SECS};

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
    /// `[p50, p90, p99]` response latency in ms; `None` when nothing was observed in the window
    /// (or the view has no latency).
    pub latency_ms: Option<[f64; 3]>,
}

/// One expected edge of a resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedEdge {
    /// Whether the resource called the peer or the other way round.
    pub direction: Direction,
    /// The resource at the other end (same kind as the queried resource).
    pub peer: Res,
    /// Its metrics.
    pub expected: Expected,
}

/// Quantiles reported by SMI.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Keys (by index) of an aggregate, each with the side whose latency it contributes.
type Selection = Vec<(usize, Side)>;

/// Ground truth of one dataset as one mesh's data shows it (see [`View`] for the differences).
///
/// * Resource metrics: every request served by the resource's meshed pods, whoever called
///   (unmeshed callers and clients outside the cluster included), for views measuring
///   resources server side; only requests from meshed pods, with client latency, for OSM's
///   client-side WASM statistics. Namespaces aggregate their meshed pods; workloads and
///   services their pods. Names are the mesh's (an OSM `store.v1` is `store-v1`; Istio and
///   Hubble name a CronJob's Job after the CronJob), so differently named objects may merge.
/// * Edges: `To` edges are calls made by the resource's pods, `From` edges calls into them; the
///   peer is the other end's resource **of the same kind** (a Deployment's calls to StatefulSet
///   pods are edges of its pods and namespace, not of the Deployment). Both ends must be meshed,
///   except for Cilium, whose peers may be any pod of the cluster. A resource calling itself has
///   both a `To` and a `From` edge. Calls to external hosts are never edges. Latency is the
///   client's or the server's, as the view's edge side says.
/// * Failure: HTTP 5xx, failing gRPC statuses 2/4/13/14/15 (where the view can see them, else
///   they succeed), or no response (reset).
/// * Latency: `histogram_quantile` on the window's bucket increments, with the view's buckets;
///   resets are observed where the mesh times them.
/// * Listing: a resource (edge) is listed when it served (carried) at least one visible request
///   anywhere in the dataset, since its series then exist for the whole dataset; idle ones show
///   zeros and no latency.
pub struct Truth<'a> {
    ds: &'a Dataset,
    view: View,
    bounds: &'static [f64],
    /// `(caller pod, serving pod)`; `None` = outside the cluster or an external host.
    keys: Vec<(Option<PodId>, Option<PodId>)>,
    /// Running totals per key and step: see [`Truth::slot`].
    prefix: Vec<u64>,
}

/// Column of the success count in a row.
const SUCCESS: usize = 0;
/// Column of the failure count in a row.
const FAILURE: usize = 1;
/// Column where the server-side bucket counts start (client-side ones follow).
const SERVER: usize = 2;

impl<'a> Truth<'a> {
    /// Aggregates the dataset's requests per (caller pod, server pod) pair and step.
    pub(crate) fn new(ds: &'a Dataset, view: View) -> Truth<'a> {
        let bounds = view.buckets_ms().unwrap_or(&[]);
        let mut index = BTreeMap::new();
        for r in ds.traffic().all() {
            let key = (r.src_pod(), r.dst_pod());
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
            view,
            bounds,
            keys,
            prefix: Vec::new(),
        };
        let width = truth.width();
        let nb = bounds.len() + 1;
        truth.prefix = vec![0; truth.keys.len() * (steps + 1) * width];
        for k in 1..=steps {
            for r in ds.traffic().step(k) {
                let Some(&i) = index.get(&(r.src_pod(), r.dst_pod())) else {
                    continue;
                };
                let at = truth.slot(i, k);
                let row = &mut truth.prefix[at..at + width];
                row[if view.fails(r.outcome) {
                    FAILURE
                } else {
                    SUCCESS
                }] += 1;
                if view.buckets_ms().is_some()
                    && (r.outcome.has_response() || view.resets_observed())
                {
                    let (server_us, client_us) = r.durations_us();
                    row[SERVER + bucket_index(bounds, view.observed_us(server_us))] += 1;
                    row[SERVER + nb + bucket_index(bounds, view.observed_us(client_us))] += 1;
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

    /// The view this truth follows.
    pub fn view(&self) -> View {
        self.view
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

    /// Sums a selection over steps `(from, to]`: success, failure, then the buckets of each
    /// key's side.
    fn sum(&self, (from, to): (usize, usize), selection: &Selection) -> Vec<u64> {
        let nb = self.bounds.len() + 1;
        let mut acc = vec![0; SERVER + nb];
        for &(i, side) in selection {
            let (a, b) = (self.slot(i, from), self.slot(i, to));
            let col = match side {
                Side::Server => SERVER,
                Side::Client => SERVER + nb,
            };
            for j in [SUCCESS, FAILURE] {
                acc[j] += self.prefix[b + j] - self.prefix[a + j];
            }
            for j in 0..nb {
                acc[SERVER + j] += self.prefix[b + col + j] - self.prefix[a + col + j];
            }
        }
        acc
    }

    /// Metrics from a summed selection.
    fn expected(&self, row: &[u64]) -> Expected {
        let latency_ms = if self.bounds.is_empty() {
            None
        } else {
            let counts = &row[SERVER..];
            let [p50, p90, p99] = QUANTILES.map(|q| histogram_quantile(q, self.bounds, counts));
            p50.zip(p90)
                .zip(p99)
                .map(|((p50, p90), p99)| [p50, p90, p99])
        };
        Expected {
            success: row[SUCCESS],
            failure: row[FAILURE],
            latency_ms,
        }
    }

    /// The whole dataset as a step range.
    fn everything(&self) -> (usize, usize) {
        (0, self.ds.traffic().steps())
    }

    fn meshed(&self, pod: PodId) -> bool {
        self.ds.scenario().meshed(pod)
    }

    /// Meshed pods the view reports as part of `r` (empty when unknown).
    fn pods(&self, r: &Res) -> Vec<PodId> {
        let s = self.ds.scenario();
        (0..s.pods.len())
            .filter(|&p| self.meshed(p))
            .filter(|&p| r.kind != Kind::Pod || self.view.pod_visible(s, p))
            .filter(|&p| self.view.resource_of(s, p, r.kind).as_ref() == Some(r))
            .collect()
    }

    /// The objects of the cluster that the mesh's name `r` stands for (e.g. OSM's `store-v1`:
    /// the Deployments `store.v1` and `store-v1`), sorted; empty when the view knows no such name.
    pub fn objects(&self, r: &Res) -> Vec<Res> {
        let s = self.ds.scenario();
        let all: BTreeSet<Res> = self
            .pods(r)
            .into_iter()
            .filter_map(|p| s.resource_of(p, r.kind))
            .collect();
        all.into_iter().collect()
    }

    /// The requests the view counts for a resource made of `pods`.
    fn served(&self, pods: &[PodId]) -> Selection {
        let side = self.view.resource_side();
        (0..self.keys.len())
            .filter(|&i| {
                let (src, dst) = self.keys[i];
                dst.is_some_and(|d| pods.contains(&d))
                    && (side == Side::Server || src.is_some_and(|s| self.meshed(s)))
            })
            .map(|i| (i, side))
            .collect()
    }

    /// Keys of each (direction, peer) edge of the resource of kind `kind` made of `pods`.
    fn edge_keys(&self, kind: Kind, pods: &[PodId]) -> BTreeMap<(Direction, Res), Selection> {
        let s = self.ds.scenario();
        let mut edges: BTreeMap<(Direction, Res), Selection> = BTreeMap::new();
        if !self.view.edge_kinds().contains(&kind) {
            return edges;
        }
        let visible_peer = |p: PodId| self.meshed(p) || self.view.unmeshed_peers();
        for (i, &(src, dst)) in self.keys.iter().enumerate() {
            let (Some(src), Some(dst)) = (src, dst) else {
                continue;
            };
            if pods.contains(&src) && visible_peer(dst) {
                if let Some(peer) = self.view.resource_of(s, dst, kind) {
                    let side = self.view.to_side(s, src);
                    edges
                        .entry((Direction::To, peer))
                        .or_default()
                        .push((i, side));
                }
            }
            if pods.contains(&dst) && visible_peer(src) {
                if let Some(peer) = self.view.resource_of(s, src, kind) {
                    let side = self.view.from_side();
                    edges
                        .entry((Direction::From, peer))
                        .or_default()
                        .push((i, side));
                }
            }
        }
        edges
    }

    /// Metrics of a resource over `(end - window, end]` (zeros/`None` if unknown).
    ///
    /// # Panics
    /// If `end`/`window` are not multiples of [`STEP_SECS`] or the window leaves the dataset.
    pub fn resource(&self, r: &Res, end: i64, window: i64) -> Expected {
        let row = self.sum(self.steps(end, window), &self.served(&self.pods(r)));
        self.expected(&row)
    }

    /// Every resource of `kind` that served visible traffic in the dataset, optionally only those
    /// in `namespace` (for [`Kind::Namespace`]: only that namespace), sorted by (namespace, name).
    /// Empty for kinds the view cannot report.
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
        if !self.view.kinds().contains(&kind) {
            return Vec::new();
        }
        let s = self.ds.scenario();
        let resources: BTreeSet<Res> = (0..s.pods.len())
            .filter(|&p| self.meshed(p) && (kind != Kind::Pod || self.view.pod_visible(s, p)))
            .filter_map(|p| self.view.resource_of(s, p, kind))
            .filter(|r| match namespace {
                None => true,
                Some(ns) if kind == Kind::Namespace => r.name == ns,
                Some(ns) => r.namespace.as_deref() == Some(ns),
            })
            .collect();
        resources
            .into_iter()
            .filter(|r| {
                let row = self.sum(self.everything(), &self.served(&self.pods(r)));
                row[SUCCESS] + row[FAILURE] > 0
            })
            .map(|r| {
                let e = self.resource(&r, end, window);
                (r, e)
            })
            .collect()
    }

    /// Edges of a resource over `(end - window, end]`, sorted by (direction, peer): every visible
    /// peer of the same kind that exchanged at least one request with it in the dataset. Empty for
    /// kinds whose edges the view cannot report.
    ///
    /// # Panics
    /// As [`Truth::resource`].
    pub fn edges(&self, r: &Res, end: i64, window: i64) -> Vec<ExpectedEdge> {
        let range = self.steps(end, window);
        self.edge_keys(r.kind, &self.pods(r))
            .into_iter()
            .filter_map(|((direction, peer), keys)| {
                let total = self.sum(self.everything(), &keys);
                (total[SUCCESS] + total[FAILURE] > 0).then(|| ExpectedEdge {
                    direction,
                    peer,
                    expected: self.expected(&self.sum(range, &keys)),
                })
            })
            .collect()
    }

    /// Every latency aggregate the truth reports for a resource: its own, then one per edge.
    #[cfg(test)]
    fn aggregates(&self, r: &Res) -> Vec<Selection> {
        let pods = self.pods(r);
        std::iter::once(self.served(&pods))
            .chain(self.edge_keys(r.kind, &pods).into_values())
            .collect()
    }

    /// Per-bucket latency counts of an aggregate over a window.
    #[cfg(test)]
    fn bucket_counts(&self, selection: &Selection, end: i64, window: i64) -> Vec<u64> {
        self.sum(self.steps(end, window), selection)[SERVER..].to_vec()
    }
}

impl View {
    /// Whether the view counts a response as failed.
    fn fails(self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Grpc(_) if !self.grpc_visible() => false,
            o => o.is_failure(),
        }
    }

    /// A duration as the mesh records it, in microseconds.
    fn observed_us(self, us: u32) -> u32 {
        if self.whole_ms() {
            us / 1000 * 1000
        } else {
            us
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Scenario;
    use crate::Mesh;

    const START: i64 = 1_700_000_000;
    const ALL_KINDS: [Kind; 7] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::StatefulSet,
        Kind::Job,
        Kind::Service,
    ];
    const VIEWS: [View; 7] = [
        View::Linkerd,
        View::Istio,
        View::Consul,
        View::Osm,
        View::OsmEnvoy,
        View::Kuma,
        View::Cilium,
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
        let (mut ok, mut bad, mut grpc_bad) = (0, 0, 0);
        for k in 25..=30 {
            for r in ds.traffic().step(k) {
                if r.dst_pod().is_some_and(|d| api_pods.contains(&d)) {
                    if r.outcome.is_failure() {
                        bad += 1;
                        grpc_bad += u64::from(matches!(r.outcome, Outcome::Grpc(_)));
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
        // Hubble cannot see gRPC statuses: the same requests, failures of gRPC moved to successes.
        let c =
            ds.truth(Mesh::Cilium)
                .resource(&Res::new(Kind::Deployment, "shop", "api"), end, 60);
        assert_eq!((c.success, c.failure), (ok + grpc_bad, bad - grpc_bad));
    }

    #[test]
    fn grpc_visibility_and_sides_differ_per_view() {
        let ds = demo(10);
        let end = START + 600;
        let ledger = Res::new(Kind::Deployment, "payments", "ledger");
        let l = ds.truth(View::Linkerd).resource(&ledger, end, 300);
        let i = ds.truth(View::Istio).resource(&ledger, end, 300);
        let k = ds.truth(View::Kuma).resource(&ledger, end, 300);
        let o = ds.truth(View::Osm).resource(&ledger, end, 300);
        let e = ds.truth(View::OsmEnvoy).resource(&ledger, end, 300);
        assert_eq!((l.success, l.failure), (i.success, i.failure));
        assert!(
            l.failure > 0 && k.failure == 0,
            "ledger only fails by gRPC status"
        );
        assert_eq!(l.success + l.failure, k.success + k.failure);
        assert_eq!(k.success, e.success);
        assert!(e.latency_ms.is_none());
        // OSM sees only meshed callers; ledger has no unmeshed ones.
        assert_eq!(o.success, k.success);
        // api is also called by the unmeshed poller: OSM (client side) misses those.
        let api = Res::new(Kind::Deployment, "shop", "api");
        let (ka, oa) = (
            ds.truth(View::Kuma).resource(&api, end, 300),
            ds.truth(View::Osm).resource(&api, end, 300),
        );
        assert!(oa.success + oa.failure < ka.success + ka.failure);
    }

    #[test]
    fn names_follow_the_mesh() {
        let ds = demo(10);
        let end = START + 600;
        let names = |v: View, k: Kind| -> Vec<String> {
            ds.truth(v)
                .list(k, None, end, 60)
                .into_iter()
                .map(|(r, _)| r.name)
                .collect()
        };
        assert_eq!(names(View::Istio, Kind::Job), ["report"]);
        assert_eq!(names(View::Cilium, Kind::Job), ["report"]);
        assert_eq!(names(View::Osm, Kind::Job), ["report-28419360"]);
        let osm = names(View::Osm, Kind::Deployment);
        assert!(osm.contains(&"store-v1".to_string()) && !osm.contains(&"store.v1".to_string()));
        // The merged store-v1 under OSM carries both deployments' traffic.
        let t = ds.truth(View::Osm);
        let merged = t.resource(&Res::new(Kind::Deployment, "shop", "store-v1"), end, 300);
        let l = ds.truth(View::Linkerd);
        let dot = l.resource(&Res::new(Kind::Deployment, "shop", "store.v1"), end, 300);
        let dash = l.resource(&Res::new(Kind::Deployment, "shop", "store-v1"), end, 300);
        assert_eq!(
            merged.success + merged.failure,
            dot.success + dot.failure + dash.success + dash.failure
        );
        assert_eq!(
            t.objects(&Res::new(Kind::Deployment, "shop", "store-v1")),
            [
                Res::new(Kind::Deployment, "shop", "store-v1"),
                Res::new(Kind::Deployment, "shop", "store.v1")
            ]
        );
        assert_eq!(
            ds.truth(View::Istio)
                .objects(&Res::new(Kind::Job, "batch", "report")),
            [Res::new(Kind::Job, "batch", "report-28419360")]
        );
        // Services: store selects both store deployments.
        assert!(names(View::Consul, Kind::Service).contains(&"store".to_string()));
        assert!(names(View::Linkerd, Kind::Service).is_empty());
        // Istio's ambient pods have no Pod metrics.
        assert!(!names(View::Istio, Kind::Pod)
            .iter()
            .any(|p| p.starts_with("report-")));
        assert!(names(View::Linkerd, Kind::Pod)
            .iter()
            .any(|p| p.starts_with("report-")));
    }

    #[test]
    fn cilium_edges_reach_unmeshed_pods() {
        let ds = demo(10);
        let end = START + 600;
        let api = Res::new(Kind::Deployment, "shop", "api");
        let peers = |v: View| -> Vec<(Direction, String)> {
            ds.truth(v)
                .edges(&api, end, 300)
                .into_iter()
                .map(|e| (e.direction, e.peer.name))
                .collect()
        };
        assert!(peers(View::Cilium).contains(&(Direction::From, "poller".into())));
        assert!(!peers(View::Linkerd).contains(&(Direction::From, "poller".into())));
        let gw = Res::new(Kind::Deployment, "payments", "gateway");
        let to: Vec<String> = ds
            .truth(View::Cilium)
            .edges(&gw, end, 300)
            .into_iter()
            .map(|e| e.peer.name)
            .collect();
        assert!(to.contains(&"mainframe".to_string()));
        assert!(ds.truth(View::OsmEnvoy).edges(&api, end, 300).is_empty());
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
        for view in VIEWS {
            let truth = ds.truth(view);
            for &kind in view.kinds() {
                assert!(
                    !truth.list(kind, None, end, 60).is_empty(),
                    "{view} {kind:?}"
                );
            }
        }
    }

    /// Prometheus computes quantiles in floating point on rates, so when the rank equals a
    /// cumulative bucket count exactly and the next bucket is empty, it may answer either that
    /// bucket's upper bound or the next non-empty bucket's lower bound. The demo must avoid such
    /// ties for every view and every window an e2e test might use (30 s to 5 min), at every
    /// aligned end of a 60-minute dataset (traffic depends only on the step index, so this covers
    /// every dataset of up to 60 minutes, whatever its start).
    #[test]
    fn demo_has_no_ambiguous_quantiles() {
        let ds = demo(60);
        let mut checked = 0;
        let mut ambiguous = Vec::new();
        for view in VIEWS.into_iter().filter(|v| v.buckets_ms().is_some()) {
            let truth = ds.truth(view);
            let aggregates: Vec<(Res, Selection)> = ALL_KINDS
                .iter()
                .flat_map(|&k| truth.list(k, None, START + 60, 60))
                .flat_map(|(r, _)| {
                    truth
                        .aggregates(&r)
                        .into_iter()
                        .map(move |a| (r.clone(), a))
                })
                .collect();
            for window in [30, 60, 300] {
                for end in (START + window..=ds.end()).step_by(STEP_SECS as usize) {
                    for (r, aggregate) in &aggregates {
                        let counts = truth.bucket_counts(aggregate, end, window);
                        checked += 1;
                        if let Some(q) = tie(&counts) {
                            ambiguous.push((view, r.clone(), end - START, window, q, counts));
                        }
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
