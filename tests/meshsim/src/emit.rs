//! Shared machinery of the emitters (all but Linkerd's, which predates it): an emitter maps every
//! [`Flow`] to the counter and histogram series its requests increment ([`SeriesSet`]), then
//! [`write`] replays the traffic step by step and prints every series at every step.
//!
//! * Every series is written at every step from the dataset start (value 0) on, so `increase()`
//!   at an aligned time is exact.
//! * A series belongs to the pod whose proxy exposes it (or to no pod, e.g. node agents); when that
//!   pod restarts, the series starts over from zero.
//! * Latency observations follow the mesh's [`View`]: its buckets, whole milliseconds or not,
//!   resets timed or not.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::openmetrics::{write_eof, write_family, Labels, Scrape};
use crate::quantile::bucket_index;
use crate::topology::PodId;
use crate::traffic::{Flow, Flows};
use crate::view::{Side, View};
use crate::{Dataset, STEP_SECS};

/// Metadata of one metric family: name, OpenMetrics type, help.
pub(crate) type Family = (&'static str, &'static str, &'static str);

/// How a mesh's histograms are bucketed and printed.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    bounds_ms: &'static [f64],
    /// `le` label values, `+Inf` last.
    le: Vec<String>,
    /// Whether bounds and sums are printed in seconds (else milliseconds).
    seconds: bool,
    whole_ms: bool,
    resets_observed: bool,
}

impl Layout {
    /// The layout of `view`'s histograms, printed in milliseconds or seconds.
    pub(crate) fn of(view: View, seconds: bool) -> Layout {
        let bounds_ms = view.buckets_ms().unwrap_or(&[]);
        let le = bounds_ms
            .iter()
            .map(|ms| {
                if seconds {
                    (ms / 1000.0).to_string()
                } else {
                    ms.to_string()
                }
            })
            .chain(["+Inf".to_owned()])
            .collect();
        Layout {
            bounds_ms,
            le,
            seconds,
            whole_ms: view.whole_ms(),
            resets_observed: view.resets_observed(),
        }
    }
}

/// What one request of a flow does to one series.
#[derive(Debug, Clone, Copy)]
enum Inc {
    Counter(usize),
    Observe(usize, Side),
}

/// A histogram's pre-rendered sample names.
struct Histogram {
    buckets: Vec<String>,
    count: String,
    sum: String,
    owner: Option<PodId>,
}

/// Every series of a dataset, and which ones each flow increments.
pub(crate) struct SeriesSet {
    counters: Vec<(String, Option<PodId>)>,
    counter_index: HashMap<String, usize>,
    histograms: Vec<Histogram>,
    histogram_index: HashMap<String, usize>,
    incs: Vec<Vec<Inc>>,
    layout: Layout,
}

impl SeriesSet {
    /// An empty set for the flows of a dataset.
    pub(crate) fn new(flows: &Flows, layout: Layout) -> SeriesSet {
        SeriesSet {
            counters: Vec::new(),
            counter_index: HashMap::new(),
            histograms: Vec::new(),
            histogram_index: HashMap::new(),
            incs: vec![Vec::new(); flows.all().len()],
            layout,
        }
    }

    /// Flow `flow` increments the counter `metric{labels}` exposed by `owner`.
    pub(crate) fn count(
        &mut self,
        flow: usize,
        metric: &str,
        labels: &Labels,
        owner: Option<PodId>,
    ) {
        let name = labels.series(metric);
        let next = self.counters.len();
        let i = *self.counter_index.entry(name.clone()).or_insert(next);
        if i == next {
            self.counters.push((name, owner));
        }
        self.incs[flow].push(Inc::Counter(i));
    }

    /// Flow `flow`'s requests are observed, with `side`'s latency, in the histogram
    /// `family{labels}` exposed by `owner`.
    pub(crate) fn observe(
        &mut self,
        flow: usize,
        family: &str,
        labels: &Labels,
        owner: Option<PodId>,
        side: Side,
    ) {
        let key = labels.series(family);
        let next = self.histograms.len();
        let i = *self.histogram_index.entry(key).or_insert(next);
        if i == next {
            let bucket = format!("{family}_bucket");
            self.histograms.push(Histogram {
                buckets: self
                    .layout
                    .le
                    .iter()
                    .map(|le| labels.with("le", le).series(&bucket))
                    .collect(),
                count: labels.series(&format!("{family}_count")),
                sum: labels.series(&format!("{family}_sum")),
                owner,
            });
        }
        self.incs[flow].push(Inc::Observe(i, side));
    }
}

/// Running state of one histogram.
#[derive(Clone)]
struct State {
    /// Per-bucket (not cumulative) counts, `+Inf` last.
    buckets: Vec<u64>,
    sum_us: u64,
}

/// Calls `each(flow id, flow)` for every flow of the dataset, then writes the series it
/// registered in `set`.
pub(crate) fn emit(
    ds: &Dataset,
    layout: Layout,
    families: &[Family],
    out: &mut dyn Write,
    mut each: impl FnMut(&mut SeriesSet, usize, &Flow),
) -> io::Result<()> {
    let flows = Flows::new(ds.scenario(), ds.traffic());
    let mut set = SeriesSet::new(&flows, layout);
    for (id, flow) in flows.all().iter().enumerate() {
        each(&mut set, id, flow);
    }
    write(ds, &flows, &set, families, out)
}

/// Replays the traffic and writes every series of `set` at every step.
fn write(
    ds: &Dataset,
    flows: &Flows,
    set: &SeriesSet,
    families: &[Family],
    out: &mut dyn Write,
) -> io::Result<()> {
    let s = ds.scenario();
    let layout = &set.layout;
    for (name, kind, help) in families {
        write_family(out, name, kind, help)?;
    }
    let nb = layout.bounds_ms.len() + 1;
    let empty = State {
        buckets: vec![0; nb],
        sum_us: 0,
    };
    let mut counters = vec![0u64; set.counters.len()];
    let mut histograms = vec![empty.clone(); set.histograms.len()];
    let mut scrape = Scrape::default();
    for k in 0..=ds.traffic().steps() {
        let offset = k as i64 * STEP_SECS;
        if k > 0 {
            let restarts = |owner: Option<PodId>| owner.is_some_and(|p| s.restarts_at(p, offset));
            for (c, (_, owner)) in counters.iter_mut().zip(&set.counters) {
                if restarts(*owner) {
                    *c = 0;
                }
            }
            for (h, hist) in histograms.iter_mut().zip(&set.histograms) {
                if restarts(hist.owner) {
                    *h = empty.clone();
                }
            }
            for r in ds.traffic().step(k) {
                let observed = r.outcome.has_response() || layout.resets_observed;
                let (server_us, client_us) = r.durations_us();
                for inc in &set.incs[flows.id(s, r)] {
                    match *inc {
                        Inc::Counter(c) => counters[c] += 1,
                        Inc::Observe(h, side) if observed => {
                            let mut us = match side {
                                Side::Server => server_us,
                                Side::Client => client_us,
                            };
                            if layout.whole_ms {
                                us = us / 1000 * 1000;
                            }
                            let h = &mut histograms[h];
                            h.buckets[bucket_index(layout.bounds_ms, us)] += 1;
                            h.sum_us += u64::from(us);
                        }
                        Inc::Observe(..) => {}
                    }
                }
            }
        }
        scrape.begin(ds.start() + offset);
        for ((name, _), &v) in set.counters.iter().zip(&counters) {
            scrape.sample(name, v);
        }
        for (hist, h) in set.histograms.iter().zip(&histograms) {
            let mut cumulative = 0;
            for (name, &n) in hist.buckets.iter().zip(&h.buckets) {
                cumulative += n;
                scrape.sample(name, cumulative);
            }
            scrape.sample(&hist.count, cumulative);
            if layout.seconds {
                scrape.sample_micro(&hist.sum, h.sum_us);
            } else {
                scrape.sample_milli(&hist.sum, h.sum_us);
            }
        }
        scrape.write_to(out)?;
    }
    write_eof(out)
}
