//! The benchmark report: what was measured (serialised as `report.json`) and its rendering
//! as markdown tables with each ratio next to its target (`report.md`, `BENCHMARKS.md`).

use std::fmt::Write;

use serde::Serialize;

use crate::load;
use crate::stats::Summary;

/// The targets every ratio is checked against.
pub mod targets {
    /// Cache miss ≤ this × the slowest single underlying query.
    pub const MISS_VS_FLOOR: f64 = 1.2;
    /// Cache miss ≤ this × the reference query plan.
    pub const MISS_VS_REFERENCE: f64 = 0.35;
    /// Cache-hit throughput ≥ this × the trivial handler's.
    pub const HIT_VS_CEILING: f64 = 0.5;
    /// Peak RSS at 5,000 workloads with a full cache, MiB.
    pub const PEAK_RSS_MIB: f64 = 150.0;
    /// Growth exponent of cost in series (1 = linear).
    pub const GROWTH_EXPONENT: f64 = 1.1;
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (RFC 3339).
    pub started: String,
    /// Wall time of the whole run, seconds.
    pub elapsed_secs: f64,
    /// `--quick` (small scales only).
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// Server settings used.
    pub settings: Settings,
    /// One entry per scale, smallest first.
    pub scales: Vec<Scale>,
    /// The many-pollers run.
    pub coalescing: Option<Coalescing>,
}

/// The machine the run used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// How an idle CPU waits (the cpuidle driver, and the guest's halt polling when the
    /// kernel has it): on a VM that halts at once, every wake-up of an idle vCPU is an
    /// interrupt through the hypervisor, which every hop of a request pays. Also says when
    /// the kernel packs woken tasks onto running vCPUs instead, so that a process woken by
    /// another shares its vCPU.
    pub cpu_idle: String,
    /// `prometheus --version`, first line.
    pub prometheus: String,
    /// 1-minute load average when the run started.
    pub load_start: f64,
    /// 1-minute load averages sampled during the run: (min, max).
    pub load_range: (f64, f64),
}

/// How the server was run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `--evaluation-interval` (the cache period), seconds.
    pub evaluation_interval_secs: u64,
    /// `--cache-max-bytes`.
    pub cache_max_bytes: u64,
    /// `--default-window` and the base of the timed windows, seconds.
    pub window_secs: u64,
    /// `--prometheus-timeout`, seconds.
    pub prometheus_timeout_secs: u64,
    /// Concurrency (= HTTP/1.1 connections) of the hit runs.
    pub hit_concurrency: usize,
}

/// One dataset size and what was measured on it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scale {
    /// Workloads (one pod each).
    pub workloads: usize,
    /// Workload → workload edges.
    pub edges: usize,
    /// Namespaces.
    pub namespaces: usize,
    /// Series in Prometheus.
    pub series: u64,
    /// Samples in Prometheus.
    pub samples: u64,
    /// Size of the OpenMetrics text, bytes.
    pub openmetrics_bytes: u64,
    /// Simulation + writing, seconds.
    pub generate_secs: f64,
    /// Backfill (promtool), seconds.
    pub promtool_secs: f64,
    /// promtool's peak RSS, bytes (includes its memory-mapped input file).
    pub promtool_peak_rss: u64,
    /// TSDB blocks on disk, bytes.
    pub tsdb_bytes: u64,
    /// Prometheus' peak RSS at the end of the scale, bytes.
    pub prometheus_peak_rss: u64,
    /// Cache-miss timings.
    pub misses: Vec<Miss>,
    /// Cache-hit runs.
    pub hits: Vec<Hit>,
    /// The largest answer: every pod of the mesh (`/pods`), a few misses.
    pub largest: Option<Single>,
    /// The server process.
    pub server: ServerUse,
}

/// Cache-miss latency of one question, next to the floor and the reference plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Miss {
    /// Which question.
    pub question: String,
    /// Its path.
    pub path: String,
    /// Answer size, bytes.
    pub bytes: u64,
    /// PromQL queries mesh-metrics issues.
    pub queries: usize,
    /// PromQL queries the reference issues.
    pub reference_queries: usize,
    /// mesh-metrics, end to end over HTTPS (each request a distinct window: a miss).
    pub server: Summary,
    /// The zero-work proxy ([`crate::proxy`]): the same HTTPS hop and plan, no server
    /// work; the least any server sending this plan could take.
    pub proxy: Summary,
    /// The floor: mesh-metrics' own queries sent straight to Prometheus at once, as the server
    /// sends them; the slowest answer.
    pub floor: Summary,
    /// For scale: the slowest of the plainest queries carrying the answer (one counts and
    /// one buckets query per direction, unsplit), each issued alone.
    pub plain: Summary,
    /// The reference plan: its queries one after another straight to Prometheus.
    pub reference: Summary,
    /// mesh-metrics' CPU time per timed miss, µs (all its threads; each chunk of misses
    /// also pays its share of one TLS handshake and one warming request).
    pub server_cpu_us: Option<f64>,
    /// The zero-work proxy's CPU time per timed miss, µs, counted the same way.
    pub proxy_cpu_us: Option<f64>,
    /// How many times mesh-metrics' threads ran per timed miss (each wake-up of a sleeping
    /// thread counts once), counted the same way.
    pub server_runs: Option<f64>,
    /// The same for the zero-work proxy.
    pub proxy_runs: Option<f64>,
}

impl Miss {
    /// (p50, p99) of server / floor.
    pub fn floor_ratio(&self) -> (f64, f64) {
        (
            ratio(self.server.p50, self.floor.p50),
            ratio(self.server.p99, self.floor.p99),
        )
    }

    /// (p50, p99) of server / zero-work proxy: what the server's own work costs in latency.
    pub fn server_proxy_ratio(&self) -> (f64, f64) {
        (
            ratio(self.server.p50, self.proxy.p50),
            ratio(self.server.p99, self.proxy.p99),
        )
    }

    /// (p50, p99) of the zero-work proxy / floor: what the second HTTPS hop alone costs.
    pub fn proxy_ratio(&self) -> (f64, f64) {
        (
            ratio(self.proxy.p50, self.floor.p50),
            ratio(self.proxy.p99, self.floor.p99),
        )
    }

    /// (p50, p99) of server / reference.
    pub fn reference_ratio(&self) -> (f64, f64) {
        (
            ratio(self.server.p50, self.reference.p50),
            ratio(self.server.p99, self.reference.p99),
        )
    }
}

/// Cache-hit throughput of one question next to the trivial handler.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hit {
    /// Which question.
    pub question: String,
    /// Answer size, bytes.
    pub bytes: u64,
    /// mesh-metrics (every request a hit).
    pub server: load::Report,
    /// The trivial handler with a body of the same size.
    pub ceiling: load::Report,
    /// Server CPU time per hit, microseconds.
    pub cpu_us_per_request: f64,
    /// Why it was not measured, if it was not.
    pub skipped: Option<String>,
    /// The server's cache period during the run, seconds.
    pub period_secs: u64,
}

impl Hit {
    /// Server throughput / ceiling throughput.
    pub fn ratio(&self) -> f64 {
        ratio(self.server.throughput_rps, self.ceiling.throughput_rps)
    }
}

/// One question timed over a few cache misses.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Single {
    /// The path.
    pub path: String,
    /// Misses timed.
    pub n: usize,
    /// Median latency, milliseconds.
    pub ms: f64,
    /// Median of the floor (the server's queries sent straight to Prometheus at once), ms.
    pub floor_ms: f64,
    /// Answer size, bytes.
    pub bytes: u64,
}

/// The server process over the whole scale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUse {
    /// CPU time, seconds.
    pub cpu_secs: f64,
    /// Requests it answered (all phases).
    pub requests: u64,
    /// Peak RSS after filling the cache, bytes.
    pub peak_rss: u64,
    /// RSS after filling the cache, bytes.
    pub rss_full_cache: u64,
    /// Bytes its caches said they held after the fill (from its `/metrics`), if known.
    pub cache_bytes: Option<u64>,
    /// Requests of the fill phase.
    pub fill_requests: u64,
}

/// The many-pollers run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coalescing {
    /// Scale it ran on (workloads, edges).
    pub scale: (usize, usize),
    /// Distinct request paths (questions) the pollers cycle through.
    pub questions: usize,
    /// Distinct PromQL queries those questions need.
    pub distinct_queries: usize,
    /// The load run (h2, many streams).
    pub load: load::Report,
    /// Cache periods the run touched.
    pub periods: u64,
    /// Queries Prometheus answered during the run.
    pub prometheus_queries: u64,
    /// The most allowed: one per distinct query per period.
    pub allowed: u64,
    /// Queries an uncached, uncoalesced server would have sent.
    pub uncached_queries: u64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "**pass**"
    } else {
        "**FAIL**"
    }
}

/// Growth exponent of `y` against `x` between two points: 1 is linear.
pub fn exponent(x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    if x0 <= 0.0 || y0 <= 0.0 || x1 <= x0 {
        return f64::NAN;
    }
    (y1 / y0).ln() / (x1 / x0).ln()
}

impl Report {
    /// The report as markdown (tables, then the targets with pass/fail).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(
            s,
            "Run {} ({}), {:.0} s. Machine: {} × {}, {:.1} GiB RAM, Linux {}, CPU idle: {}, {}. \
             Load average {:.2} at the start, {:.2}–{:.2} during the run (other builds may have shared the machine).\n",
            self.started,
            if self.quick { "quick" } else { "full" },
            self.elapsed_secs,
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.cpu_idle,
            m.prometheus,
            m.load_start,
            m.load_range.0,
            m.load_range.1
        );
        let st = &self.settings;
        let _ = writeln!(
            s,
            "Server: `--evaluation-interval {}s --cache-max-bytes {} --default-window {}s --prometheus-timeout {}s --authorization-mode AlwaysAllow`, HTTPS on loopback.\n",
            st.evaluation_interval_secs, st.cache_max_bytes, st.window_secs, st.prometheus_timeout_secs
        );

        s.push_str("### Cache miss (ms)\n\n");
        s.push_str("| workloads / edges | question | n | mesh-metrics p50 / p99 | floor p50 / p99 | ×floor p50 / p99 (≤ 1.2) | zero-work proxy p50 / p99 (×floor) | plain queries p50 / p99 | reference p50 / p99 | ×reference p50 / p99 (≤ 0.35) |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for sc in &self.scales {
            for mi in &sc.misses {
                let (f50, f99) = mi.floor_ratio();
                let (p50, p99) = mi.proxy_ratio();
                let (r50, r99) = mi.reference_ratio();
                let _ = writeln!(
                    s,
                    "| {} / {} | {} ({} vs {} queries) | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} {} | {:.1} / {:.1} ({:.2} / {:.2}) | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} {} |",
                    sc.workloads,
                    sc.edges,
                    mi.question,
                    mi.queries,
                    mi.reference_queries,
                    mi.server.n,
                    mi.server.p50,
                    mi.server.p99,
                    mi.floor.p50,
                    mi.floor.p99,
                    f50,
                    f99,
                    verdict(f50 <= targets::MISS_VS_FLOOR && f99 <= targets::MISS_VS_FLOOR),
                    mi.proxy.p50,
                    mi.proxy.p99,
                    p50,
                    p99,
                    mi.plain.p50,
                    mi.plain.p99,
                    mi.reference.p50,
                    mi.reference.p99,
                    r50,
                    r99,
                    verdict(r50 <= targets::MISS_VS_REFERENCE && r99 <= targets::MISS_VS_REFERENCE),
                );
            }
        }

        s.push_str("\n### The server's own work on a cache miss\n\n");
        s.push_str("| workloads / edges | question | latency ×proxy p50 / p99 | CPU µs / miss: mesh-metrics | zero-work proxy | the server's own (difference) | thread wake-ups / miss: mesh-metrics / proxy |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for sc in &self.scales {
            for mi in &sc.misses {
                let us = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
                let runs = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
                let own = mi.server_cpu_us.zip(mi.proxy_cpu_us).map(|(s, p)| s - p);
                let (l50, l99) = mi.server_proxy_ratio();
                let _ = writeln!(
                    s,
                    "| {} / {} | {} | {l50:.2} / {l99:.2} | {} | {} | {} | {} / {} |",
                    sc.workloads,
                    sc.edges,
                    mi.question,
                    us(mi.server_cpu_us),
                    us(mi.proxy_cpu_us),
                    us(own),
                    runs(mi.server_runs),
                    runs(mi.proxy_runs),
                );
            }
        }

        s.push_str("\n### Cache hit\n\n");
        s.push_str("| workloads / edges | question | body bytes | mesh-metrics req/s (p50 / p99 ms) | ceiling req/s (p50 / p99 ms) | ratio (≥ 0.5) | server CPU µs / hit |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for sc in &self.scales {
            for h in &sc.hits {
                if let Some(why) = &h.skipped {
                    let _ = writeln!(
                        s,
                        "| {} / {} | {} | {} | not measured: {why} | | | |",
                        sc.workloads, sc.edges, h.question, h.bytes
                    );
                    continue;
                }
                // a question too slow for the period is measured on a second server
                let question = if h.period_secs > st.evaluation_interval_secs {
                    format!("{} ({} s cache period)", h.question, h.period_secs)
                } else {
                    h.question.clone()
                };
                let _ = writeln!(
                    s,
                    "| {} / {} | {} | {} | {:.0} ({:.2} / {:.2}) | {:.0} ({:.2} / {:.2}) | {:.2} {} | {:.0} |",
                    sc.workloads,
                    sc.edges,
                    question,
                    h.bytes,
                    h.server.throughput_rps,
                    h.server.latency_ms.p50,
                    h.server.latency_ms.p99,
                    h.ceiling.throughput_rps,
                    h.ceiling.latency_ms.p50,
                    h.ceiling.latency_ms.p99,
                    h.ratio(),
                    verdict(h.ratio() >= targets::HIT_VS_CEILING),
                    h.cpu_us_per_request,
                );
            }
        }

        s.push_str("\n### Scaling\n\n");
        s.push_str("| workloads / edges | namespaces | series | dataset: generate / promtool s (promtool peak MiB) | Prometheus peak MiB | namespace list miss ms (bytes) | edges miss ms (bytes) | all pods miss / floor ms (bytes, n) | server CPU s (requests) | server peak RSS MiB (cache MiB) |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for sc in &self.scales {
            let miss = |i: usize| {
                sc.misses
                    .get(i)
                    .map(|m| format!("{:.1} ({})", m.server.p50, m.bytes))
                    .unwrap_or_default()
            };
            let largest = sc
                .largest
                .as_ref()
                .map(|l| format!("{:.1} / {:.1} ({}, n={})", l.ms, l.floor_ms, l.bytes, l.n))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} / {} | {} | {} | {:.1} / {:.1} ({:.0}) | {:.0} | {} | {} | {} | {:.2} ({}) | {:.1} ({}) |",
                sc.workloads,
                sc.edges,
                sc.namespaces,
                sc.series,
                sc.generate_secs,
                sc.promtool_secs,
                mib(sc.promtool_peak_rss),
                mib(sc.prometheus_peak_rss),
                miss(0),
                miss(1),
                largest,
                sc.server.cpu_secs,
                sc.server.requests,
                mib(sc.server.peak_rss),
                sc.server
                    .cache_bytes
                    .map(|b| format!("{:.1}", mib(b)))
                    .unwrap_or_else(|| "?".into()),
            );
        }

        if let Some(c) = &self.coalescing {
            s.push_str("\n### Coalescing\n\n");
            s.push_str("| workloads / edges | pollers (connections) | questions (distinct PromQL) | requests (req/s, p50 / p99 ms) | cache periods | Prometheus queries (per s) | allowed: 1 per query per period | uncached server would send |\n");
            s.push_str("|---|---|---|---|---|---|---|---|\n");
            let _ = writeln!(
                s,
                "| {} / {} | {} {} ({}) | {} ({}) | {} ({:.0}, {:.1} / {:.1}) | {} | {} ({:.1}) | {} {} | {} |",
                c.scale.0,
                c.scale.1,
                c.load.concurrency,
                c.load.protocol,
                c.load.connections,
                c.questions,
                c.distinct_queries,
                c.load.requests,
                c.load.throughput_rps,
                c.load.latency_ms.p50,
                c.load.latency_ms.p99,
                c.periods,
                c.prometheus_queries,
                c.prometheus_queries as f64 / c.load.elapsed_secs.max(1e-9),
                c.allowed,
                verdict(c.prometheus_queries <= c.allowed && c.load.errors == 0),
                c.uncached_queries,
            );
        }

        s.push_str("\n### Targets\n\n");
        s.push_str(&self.targets_markdown());
        s
    }

    /// One line per target with the worst measured value and pass/fail.
    fn targets_markdown(&self) -> String {
        let mut s = String::new();
        let misses: Vec<(&Scale, &Miss)> = self
            .scales
            .iter()
            .flat_map(|sc| sc.misses.iter().map(move |m| (sc, m)))
            .collect();
        let worst = |f: &dyn Fn(&Miss) -> (f64, f64)| {
            misses
                .iter()
                .map(|(sc, m)| {
                    let (a, b) = f(m);
                    (
                        a.max(b),
                        format!("{} at {} workloads", m.question, sc.workloads),
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        };
        if let Some((v, at)) = worst(&Miss::floor_ratio) {
            let _ = writeln!(
                s,
                "- Cache miss ≤ 1.2 × slowest single query: worst {v:.2} ({at}) {}",
                verdict(v <= targets::MISS_VS_FLOOR)
            );
        }
        let range = |f: &dyn Fn(&Miss) -> f64| {
            let v: Vec<f64> = misses
                .iter()
                .map(|(_, m)| f(m))
                .filter(|r| r.is_finite())
                .collect();
            (!v.is_empty()).then(|| {
                (
                    v.iter().copied().fold(f64::INFINITY, f64::min),
                    v.iter().copied().fold(0.0, f64::max),
                )
            })
        };
        if let Some((lo, hi)) = range(&|m| m.proxy_ratio().0) {
            let _ = writeln!(
                s,
                "  - for scale, the zero-work proxy (the same plan and HTTPS hop, no server work): {lo:.2}–{hi:.2} × floor at p50"
            );
        }
        if let Some((lo, hi)) = range(&|m| m.server_proxy_ratio().0) {
            let _ = writeln!(
                s,
                "  - mesh-metrics takes {lo:.2}–{hi:.2} × the zero-work proxy at p50 (the server's own work)"
            );
        }
        if let Some((v, at)) = worst(&Miss::reference_ratio) {
            let _ = writeln!(
                s,
                "- Cache miss ≤ 0.35 × reference plan: worst {v:.2} ({at}) {}",
                verdict(v <= targets::MISS_VS_REFERENCE)
            );
        }
        let hit = self
            .scales
            .iter()
            .flat_map(|sc| {
                sc.hits
                    .iter()
                    .filter(|h| h.skipped.is_none())
                    .map(move |h| (sc, h))
            })
            .map(|(sc, h)| {
                (
                    h.ratio(),
                    format!("{} at {} workloads", h.question, sc.workloads),
                )
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((v, at)) = hit {
            let _ = writeln!(
                s,
                "- Cache-hit throughput ≥ 0.5 × trivial handler: worst {v:.2} ({at}) {}",
                verdict(v >= targets::HIT_VS_CEILING)
            );
        }
        if let [.., a, b] = self.scales.as_slice() {
            let grow =
                |f: &dyn Fn(&Scale) -> f64| exponent(a.series as f64, f(a), b.series as f64, f(b));
            let lat = grow(&|sc| sc.misses.first().map_or(0.0, |m| m.server.p50));
            let cpu = grow(&|sc| sc.server.cpu_secs);
            let pods = exponent(
                a.workloads as f64,
                a.largest.as_ref().map_or(0.0, |l| l.ms),
                b.workloads as f64,
                b.largest.as_ref().map_or(0.0, |l| l.ms),
            );
            let pods_floor = exponent(
                a.workloads as f64,
                a.largest.as_ref().map_or(0.0, |l| l.floor_ms),
                b.workloads as f64,
                b.largest.as_ref().map_or(0.0, |l| l.floor_ms),
            );
            let worst = lat.max(pods);
            let _ = writeln!(
                s,
                "- Cost grows linearly or better: from {} to {} workloads, namespace-list miss latency grows as series^{lat:.2}, all-pods miss as workloads^{pods:.2} (its floor, Prometheus alone: workloads^{pods_floor:.2}; server CPU over the whole scale as series^{cpu:.2}; its phases differ in length) {}",
                a.workloads,
                b.workloads,
                verdict(worst <= targets::GROWTH_EXPONENT)
            );
        }
        match self.scales.iter().find(|sc| sc.workloads >= 5000) {
            Some(sc) => {
                let _ = writeln!(
                    s,
                    "- Peak RSS < 150 MiB at 5,000 workloads with a full cache: {:.1} MiB {}",
                    mib(sc.server.peak_rss),
                    verdict(mib(sc.server.peak_rss) < targets::PEAK_RSS_MIB)
                );
            }
            None => {
                let top = self.scales.last();
                let _ = writeln!(
                    s,
                    "- Peak RSS < 150 MiB at 5,000 workloads: not run (largest scale {} workloads: {:.1} MiB)",
                    top.map_or(0, |t| t.workloads),
                    top.map_or(0.0, |t| mib(t.server.peak_rss))
                );
            }
        }
        let bounded = self
            .scales
            .iter()
            .filter_map(|sc| sc.server.cache_bytes)
            .max();
        match bounded {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "- Cache memory bounded by `--cache-max-bytes` ({:.0} MiB): largest cache {:.1} MiB {}",
                    mib(self.settings.cache_max_bytes),
                    mib(b),
                    verdict(b <= self.settings.cache_max_bytes)
                );
            }
            None => s.push_str("- Cache memory bounded by configuration: not measured\n"),
        }
        if let Some(c) = &self.coalescing {
            let _ = writeln!(
                s,
                "- {} concurrent pollers: Prometheus saw {} queries, at most one per distinct query per cache period allows {} {}",
                c.load.concurrency,
                c.prometheus_queries,
                c.allowed,
                verdict(c.prometheus_queries <= c.allowed && c.load.errors == 0)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_of_linear_and_quadratic_growth() {
        assert!((exponent(10.0, 5.0, 100.0, 50.0) - 1.0).abs() < 1e-9);
        assert!((exponent(10.0, 1.0, 100.0, 100.0) - 2.0).abs() < 1e-9);
        assert!(exponent(0.0, 1.0, 1.0, 1.0).is_nan());
    }

    #[test]
    fn markdown_marks_targets() {
        let mut sc = Scale {
            workloads: 10,
            edges: 20,
            ..Scale::default()
        };
        sc.misses.push(Miss {
            question: "namespace list".into(),
            server: Summary {
                n: 3,
                p50: 10.0,
                p99: 12.0,
                ..Summary::default()
            },
            floor: Summary {
                n: 3,
                p50: 9.0,
                p99: 11.0,
                ..Summary::default()
            },
            proxy: Summary {
                n: 3,
                p50: 9.9,
                p99: 11.0,
                ..Summary::default()
            },
            reference: Summary {
                n: 3,
                p50: 20.0,
                p99: 30.0,
                ..Summary::default()
            },
            server_cpu_us: Some(412.4),
            proxy_cpu_us: Some(250.0),
            server_runs: Some(4.04),
            proxy_runs: Some(3.5),
            ..Miss::default()
        });
        sc.hits.push(Hit {
            question: "namespace list".into(),
            period_secs: 120,
            ..Hit::default()
        });
        sc.hits.push(Hit {
            question: "deployment edges".into(),
            skipped: Some("too slow".into()),
            ..Hit::default()
        });
        let r = Report {
            started: "t".into(),
            elapsed_secs: 1.0,
            quick: true,
            machine: Machine::default(),
            settings: Settings {
                evaluation_interval_secs: 10,
                cache_max_bytes: 1 << 26,
                window_secs: 1800,
                prometheus_timeout_secs: 120,
                hit_concurrency: 32,
            },
            scales: vec![sc],
            coalescing: None,
        };
        let md = r.markdown();
        assert!(md.contains("| 10 / 20 | namespace list"), "{md}");
        assert!(md.contains("1.11 / 1.09 **pass**"), "{md}");
        assert!(md.contains("| 9.9 / 11.0 (1.10 / 1.00) |"), "{md}");
        assert!(md.contains("zero-work proxy"), "{md}");
        assert!(
            md.contains("| 10 / 20 | namespace list | 1.01 / 1.09 | 412 | 250 | 162 | 4.0 / 3.5 |"),
            "{md}"
        );
        assert!(
            md.contains("mesh-metrics takes 1.01–1.01 × the zero-work proxy"),
            "{md}"
        );
        assert!(md.contains("0.50 / 0.40 **FAIL**"), "{md}");
        assert!(
            md.contains("| namespace list (120 s cache period) |"),
            "{md}"
        );
        assert!(
            md.contains("| deployment edges | 0 | not measured: too slow |"),
            "{md}"
        );
    }
}
