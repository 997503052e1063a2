//! The benchmark run: for each scale, generate the dataset, backfill it into a real
//! Prometheus, start the release server as its own process, and measure cache misses (next
//! to the floor and the reference plan), cache hits (next to the trivial handler), the cost
//! of the largest answer and of a full cache, and, once, many concurrent pollers.
//!
//! Every child process (Prometheus, the server, the ceiling, the load generator) is killed
//! when its handle drops; every loop is bounded by a count and a deadline; only loopback
//! addresses are used.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use meshsim::Scenario;

use crate::load::{self, Target};
use crate::plans::{self, Question};
use crate::procstat::{self, Usage};
use crate::prom::{self, Prometheus};
use crate::report::{Coalescing, Hit, Machine, Miss, Report, Scale, ServerUse, Settings, Single};
use crate::stats::Summary;

/// Base of every timed window: the dataset's 30 s of samples stay inside `[now - window, now]`
/// for the whole run, so every query reads the same 4 samples per series (what a 30 s
/// window reads at a 10 s scrape interval).
const WINDOW_SECS: u64 = 1800;
/// The server's cache period.
const EVALUATION_INTERVAL_SECS: u64 = 10;
/// The cache period of a second server that measures the hits of questions whose miss
/// leaves too little of [`EVALUATION_INTERVAL_SECS`] (the largest namespace list).
const LONG_PERIOD_SECS: u64 = 120;
/// The server's cache budget (its default).
const CACHE_MAX_BYTES: u64 = 64 << 20;
/// Generous, so the largest scale's heaviest query is measured rather than timed out.
const PROMETHEUS_TIMEOUT_SECS: u64 = 120;
/// HTTP/1.1 connections (= requests in flight) of the hit runs.
const HIT_CONCURRENCY: usize = 32;
/// Seconds of data written (4 samples per series at the simulator's 10 s step).
const DATA_SPAN_SECS: i64 = 30;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// (workloads, edges) per scale, smallest first.
    pub scales: Vec<(usize, usize)>,
    /// Scale (workloads) of the many-pollers run.
    pub coalescing_at: usize,
    /// Concurrent pollers.
    pub pollers: usize,
    /// Work directory (datasets, logs, targets files).
    pub workdir: PathBuf,
    /// The release `mesh-metrics` binary.
    pub server_bin: PathBuf,
    /// The `mesh-metrics-load` binary.
    pub load_bin: PathBuf,
    /// This runner's binary (for the `ceiling` subcommand).
    pub self_bin: PathBuf,
    /// Most cache-miss samples per question and side.
    pub miss_samples: usize,
    /// Time budget of one side of one miss measurement.
    pub miss_budget: Duration,
    /// Length of one hit run.
    pub hit_secs: f64,
    /// Length of the many-pollers run.
    pub pollers_secs: f64,
    /// Whether this is a `--quick` run.
    pub quick: bool,
}

/// Prints a progress line on stderr with the time since the start.
fn progress(start: Instant, msg: &str) {
    eprintln!("[{:>6.1}s] {msg}", start.elapsed().as_secs_f64());
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Current evaluation time of the server: now aligned down to the cache period.
fn evaluation_time() -> i64 {
    let step = (EVALUATION_INTERVAL_SECS * 1000) as i64;
    now_ms().div_euclid(step) * step
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// TLS files shared by the server, the ceiling, the proxy and the load generator.
struct Certs {
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn create(dir: &Path) -> Result<Certs> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, ck.cert.pem())?;
        std::fs::write(&key, ck.signing_key.serialize_pem())?;
        Ok(Certs { cert, key })
    }

    fn client(&self) -> Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.cert)?)?;
        Ok(reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(PROMETHEUS_TIMEOUT_SECS + 30))
            .build()?)
    }
}

/// The server under test.
struct Server {
    proc: Proc,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Server {
    /// Starts the server with a cache period of `period_secs` and waits until it is ready.
    async fn start(
        cfg: &Config,
        certs: &Certs,
        prometheus: &str,
        log: &Path,
        period_secs: u64,
    ) -> Result<Server> {
        let addr = prom::free_loopback_addr()?;
        let child = Command::new(&cfg.server_bin)
            .args(["--mesh", "linkerd", "--prometheus-url", prometheus])
            .args([
                "--prometheus-timeout",
                &format!("{PROMETHEUS_TIMEOUT_SECS}s"),
            ])
            .args(["--authorization-mode", "AlwaysAllow"])
            .args(["--bind-address", "127.0.0.1"])
            .args(["--secure-port", &addr.port().to_string()])
            .arg("--tls-cert-file")
            .arg(&certs.cert)
            .arg("--tls-private-key-file")
            .arg(&certs.key)
            .args(["--default-window", &format!("{WINDOW_SECS}s")])
            .args(["--evaluation-interval", &format!("{period_secs}s")])
            .args(["--cache-max-bytes", &CACHE_MAX_BYTES.to_string()])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", cfg.server_bin.display()))?;
        let mut server = Server {
            proc: Proc(child),
            addr,
            http: certs.client()?,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.proc.0.try_wait()? {
                bail!(
                    "mesh-metrics exited ({status}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if server
                .http
                .get(server.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("mesh-metrics not ready after 30s; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    fn usage(&self) -> Usage {
        procstat::usage(self.proc.0.id()).unwrap_or_default()
    }

    /// GETs `path`; returns (latency ms, body).
    async fn get(&self, path: &str) -> Result<(f64, bytes::Bytes)> {
        let t = Instant::now();
        let resp = self.http.get(self.url(path)).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!(
                "{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok((t.elapsed().as_secs_f64() * 1e3, body))
    }

    /// Bytes the server's caches hold, from its `/metrics`, if it exposes them.
    async fn cache_bytes(&self) -> Option<u64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("mesh_metrics_cache_bytes"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (total > 0.0).then_some(total as u64)
    }
}

/// Runs the load generator as its own process.
fn run_load(
    cfg: &Config,
    certs: &Certs,
    addr: SocketAddr,
    targets: &[Target],
    opts: &LoadOpts,
) -> Result<load::Report> {
    let file = cfg.workdir.join("targets.txt");
    let text: String = targets.iter().map(|t| t.line() + "\n").collect();
    std::fs::write(&file, text)?;
    let mut cmd = Command::new(&cfg.load_bin);
    cmd.arg("--addr")
        .arg(addr.to_string())
        .arg("--ca")
        .arg(&certs.cert)
        .arg("--targets")
        .arg(&file)
        .args(["--connections", &opts.connections.to_string()])
        .args(["--concurrency", &opts.concurrency.to_string()])
        .args(["--requests", &opts.requests.to_string()])
        .args(["--seconds", &format!("{:.3}", opts.seconds)]);
    if opts.h2 {
        cmd.arg("--h2");
    }
    if opts.each {
        cmd.arg("--each");
    }
    if opts.warm {
        cmd.args(["--warm", apiservice::BASE_PATH]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", cfg.load_bin.display()))?;
    if !out.status.success() {
        bail!(
            "load generator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Times one request per window `ws` of question `q` on the HTTPS server at `addr`
/// (each a cache miss on mesh-metrics), one after another on one warmed connection.
fn timed_misses(
    cfg: &Config,
    certs: &Certs,
    addr: SocketAddr,
    q: &Question,
    ws: &[u64],
) -> Result<load::Report> {
    let targets: Vec<Target> = ws
        .iter()
        .map(|w| Target {
            path: format!("{}?t={w}s", q.path()),
            accept: None,
        })
        .collect();
    let rep = run_load(
        cfg,
        certs,
        addr,
        &targets,
        &LoadOpts {
            h2: false,
            connections: 1,
            concurrency: 1,
            requests: targets.len() as u64,
            seconds: 3.0 * cfg.miss_budget.as_secs_f64(),
            each: true,
            warm: true,
        },
    )?;
    if rep.errors > 0 || rep.each_ms.len() != ws.len() {
        bail!("cache-miss run on {addr} failed: {:?}", rep.first_error);
    }
    Ok(rep)
}

/// The CPU time a process spends on timed misses, to the nanosecond, and how many times
/// its threads ran meanwhile ([`procstat::sched`]); `None` where the kernel does not tell.
struct CpuPerMiss {
    pid: u32,
    total: Option<procstat::Sched>,
    misses: usize,
}

impl CpuPerMiss {
    fn new(pid: u32) -> Self {
        CpuPerMiss {
            pid,
            total: Some(procstat::Sched::default()),
            misses: 0,
        }
    }

    /// Runs `f` (which sends `misses` misses) and adds the process's counts meanwhile.
    fn during<T>(&mut self, misses: usize, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let before = procstat::sched(self.pid);
        let out = f()?;
        let after = procstat::sched(self.pid);
        self.total = match (self.total, before, after) {
            (Some(t), Some(b), Some(a)) => Some(procstat::Sched {
                cpu_ns: t.cpu_ns + a.cpu_ns.saturating_sub(b.cpu_ns),
                runs: t.runs + a.runs.saturating_sub(b.runs),
            }),
            _ => None,
        };
        self.misses += misses;
        Ok(out)
    }

    /// The counts so far, once there are misses.
    fn per_miss(&self) -> Option<(procstat::Sched, f64)> {
        Some((self.total?, self.misses as f64)).filter(|_| self.misses > 0)
    }

    /// Mean CPU µs per miss so far.
    fn micros(&self) -> Option<f64> {
        self.per_miss().map(|(t, n)| t.cpu_ns as f64 / 1e3 / n)
    }

    /// Mean thread runs (wake-ups) per miss so far.
    fn runs(&self) -> Option<f64> {
        self.per_miss().map(|(t, n)| t.runs as f64 / n)
    }
}

/// The five sides of a cache-miss comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// mesh-metrics, end to end.
    Server,
    /// The zero-work proxy: the same HTTPS hop and plan, no server work.
    Proxy,
    /// Its own plan, straight to Prometheus, all at once.
    Floor,
    /// The plainest queries, one after another.
    Plain,
    /// The reference implementation's plan, one query after another.
    Reference,
}

impl Side {
    /// The order of the sides in chunk `round`: the reference plan first, then the other
    /// four in turn, so each of them runs right after the reference plan's heavy queries
    /// in one chunk of four. Whichever side does finds Prometheus still busy with them: a
    /// fixed order that put the server there every time cost it 0.1-0.15 of its floor at
    /// 5,000 workloads in paired probes.
    fn order(round: usize) -> [Side; 5] {
        let light = [Side::Server, Side::Proxy, Side::Floor, Side::Plain];
        let r = round % light.len();
        [
            Side::Reference,
            light[r],
            light[(r + 1) % light.len()],
            light[(r + 2) % light.len()],
            light[(r + 3) % light.len()],
        ]
    }
}

/// Options of one load run.
struct LoadOpts {
    h2: bool,
    connections: usize,
    concurrency: usize,
    requests: u64,
    seconds: f64,
    each: bool,
    /// Warm every connection with one untimed discovery request first.
    warm: bool,
}

/// The trivial handler, as its own process (this binary's `ceiling` subcommand).
fn start_ceiling(cfg: &Config, certs: &Certs, body: &Path) -> Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(&cfg.self_bin);
    cmd.arg("ceiling");
    start_helper(cmd, certs, body)
}

/// The zero-work proxy in front of `prometheus`, as its own process (this binary's
/// `proxy` subcommand), with the server's settings.
fn start_proxy(
    cfg: &Config,
    certs: &Certs,
    body: &Path,
    prometheus: &str,
) -> Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(&cfg.self_bin);
    cmd.arg("proxy")
        .args(["--prometheus-url", prometheus])
        .args(["--default-window-secs", &WINDOW_SECS.to_string()])
        .args([
            "--evaluation-interval-secs",
            &EVALUATION_INTERVAL_SECS.to_string(),
        ])
        .args([
            "--prometheus-timeout-secs",
            &PROMETHEUS_TIMEOUT_SECS.to_string(),
        ]);
    start_helper(cmd, certs, body)
}

/// Starts `cmd` (a subcommand of this binary serving `body` with the bench certificate)
/// and reads the address it listens on.
fn start_helper(mut cmd: Command, certs: &Certs, body: &Path) -> Result<(Proc, SocketAddr)> {
    let mut child = cmd
        .arg("--cert")
        .arg(&certs.cert)
        .arg("--key")
        .arg(&certs.key)
        .arg("--body")
        .arg(body)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| {
            let what = cmd.get_args().next().unwrap_or_default().to_string_lossy();
            anyhow!("the {what} process said {line:?}")
        })?
        .parse()?;
    Ok((proc, addr))
}

/// Sleeps until just after the next boundary of a `period_secs` cache period.
async fn next_period(period_secs: u64) {
    let step = (period_secs * 1000) as i64;
    let now = now_ms();
    let wait = step - now.rem_euclid(step) + 50;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

/// Milliseconds left in the current `period_secs` cache period.
fn period_left_ms(period_secs: u64) -> i64 {
    let step = (period_secs * 1000) as i64;
    step - now_ms().rem_euclid(step)
}

/// Samples the 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The cpuidle driver, the guest halt polling of the `haltpoll` driver (0 ns: an idle vCPU
/// halts at once), and whether the kernel packs woken tasks onto running vCPUs rather than
/// waking a halted one (`kernel.sched_vcpu_pack`, a knob of some guest kernels; absent
/// upstream).
fn cpu_idle() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let driver =
        read("/sys/devices/system/cpu/cpuidle/current_driver").unwrap_or_else(|| "unknown".into());
    let idle = match read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        Some(ns) if driver == "haltpoll" => format!("{driver}, guest halt polling {ns} ns"),
        _ => driver,
    };
    match read("/proc/sys/kernel/sched_vcpu_pack") {
        Some(pack) if pack != "0" => {
            format!(
                "{idle}, woken tasks packed onto running vCPUs (kernel.sched_vcpu_pack = {pack})"
            )
        }
        _ => idle,
    }
}

/// Describes the machine.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let prometheus = Command::new("prometheus")
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_default();
    let load = loadavg();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        memory_gib: mem_kib / (1024.0 * 1024.0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpu_idle: cpu_idle(),
        prometheus,
        load_start: load,
        load_range: (load, load),
    }
}

/// Copies the binaries into the work directory, so that builds running meanwhile in the
/// same target directory cannot replace them under the run.
fn private_binaries(cfg: &Config) -> Result<Config> {
    let dir = cfg.workdir.join("bin");
    std::fs::create_dir_all(&dir)?;
    let copy = |from: &Path, name: &str| -> Result<PathBuf> {
        let to = dir.join(name);
        std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        Ok(to)
    };
    Ok(Config {
        server_bin: copy(&cfg.server_bin, "mesh-metrics")?,
        load_bin: copy(&cfg.load_bin, "mesh-metrics-load")?,
        self_bin: copy(&cfg.self_bin, "mesh-metrics-bench")?,
        ..cfg.clone()
    })
}

/// Runs every scale and returns the report. After each scale the report so far is
/// written to `partial` (JSON), if given.
pub async fn run(cfg: &Config, partial: Option<&Path>) -> Result<Report> {
    let start = Instant::now();
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    prom::find_tool("prometheus")?;
    prom::find_tool("promtool")?;
    std::fs::create_dir_all(&cfg.workdir)?;
    let cfg = &private_binaries(cfg)?;
    let certs = Certs::create(&cfg.workdir)?;
    let mut machine = machine();
    let mut scales = Vec::new();
    let mut coalescing = None;
    for (i, &(workloads, edges)) in cfg.scales.iter().enumerate() {
        progress(
            start,
            &format!(
                "scale {}/{}: {workloads} workloads, {edges} edges",
                i + 1,
                cfg.scales.len()
            ),
        );
        let (scale, c) = run_scale(cfg, &certs, workloads, edges, start, &mut machine).await?;
        scales.push(scale);
        if c.is_some() {
            coalescing = c;
        }
        if let Some(p) = partial {
            std::fs::write(p, serde_json::to_vec_pretty(&(&scales, &coalescing))?)?;
        }
    }
    Ok(Report {
        started,
        elapsed_secs: start.elapsed().as_secs_f64(),
        quick: cfg.quick,
        machine,
        settings: Settings {
            evaluation_interval_secs: EVALUATION_INTERVAL_SECS,
            cache_max_bytes: CACHE_MAX_BYTES,
            window_secs: WINDOW_SECS,
            prometheus_timeout_secs: PROMETHEUS_TIMEOUT_SECS,
            hit_concurrency: HIT_CONCURRENCY,
        },
        scales,
        coalescing,
    })
}

fn sample_load(machine: &mut Machine) {
    let l = loadavg();
    machine.load_range = (machine.load_range.0.min(l), machine.load_range.1.max(l));
}

/// The slowest answer, in ms, when `queries` are sent to Prometheus at once (as the
/// server sends a plan).
async fn slowest_together(prometheus: &Prometheus, queries: &[String]) -> Result<f64> {
    let at = evaluation_time();
    let timed =
        futures::future::try_join_all(queries.iter().map(|q| prometheus.query(q, at))).await?;
    Ok(timed
        .iter()
        .map(|t| t.elapsed.as_secs_f64() * 1e3)
        .fold(0.0, f64::max))
}

/// The slowest of `queries`, each issued alone (one after another), in ms.
async fn slowest_alone(prometheus: &Prometheus, queries: &[String]) -> Result<f64> {
    let mut slowest = 0.0f64;
    for promql in queries {
        let t = prometheus.query(promql, evaluation_time()).await?;
        slowest = slowest.max(t.elapsed.as_secs_f64() * 1e3);
    }
    Ok(slowest)
}

async fn run_scale(
    cfg: &Config,
    certs: &Certs,
    workloads: usize,
    edges: usize,
    start: Instant,
    machine: &mut Machine,
) -> Result<(Scale, Option<Coalescing>)> {
    let dir = cfg.workdir.join(format!("scale-{workloads}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let scenario = Scenario::scaled(workloads, edges);
    let end = chrono::Utc::now().timestamp().div_euclid(10) * 10;
    let om = dir.join("data.om");
    progress(start, "  generating the dataset");
    let written =
        crate::dataset::write_scaled(&scenario, end - DATA_SPAN_SECS, end, &om, |d, n| {
            if n >= 10 && d % (n / 10).max(1) == 0 {
                progress(start, &format!("    cell {d}/{n}"));
            }
        })?;
    progress(
        start,
        &format!(
            "  {} series, {:.0} MB of OpenMetrics in {:.1}s; backfilling with promtool",
            written.series,
            written.bytes as f64 / 1e6,
            written.elapsed.as_secs_f64()
        ),
    );
    let tsdb = dir.join("tsdb");
    let backfill = prom::backfill(&om, &tsdb, Duration::from_secs(1500))?;
    std::fs::remove_file(&om)?;
    progress(
        start,
        &format!("  backfilled in {:.1}s", backfill.elapsed.as_secs_f64()),
    );
    sample_load(machine);
    let prometheus = Prometheus::start(&tsdb, &dir).await?;
    let server = Server::start(
        cfg,
        certs,
        &prometheus.url(),
        &dir.join("server.log"),
        EVALUATION_INTERVAL_SECS,
    )
    .await?;
    let usage0 = server.usage();
    let mut requests = 0u64;
    let mut scale = Scale {
        workloads,
        edges: written.edges,
        namespaces: scenario.namespace_names().len(),
        series: written.series,
        samples: written.samples,
        openmetrics_bytes: written.bytes,
        generate_secs: written.elapsed.as_secs_f64(),
        promtool_secs: backfill.elapsed.as_secs_f64(),
        promtool_peak_rss: backfill.peak_rss_bytes,
        tsdb_bytes: backfill.tsdb_bytes,
        ..Scale::default()
    };
    let (namespace, name) = scenario.workload_names()[0].clone();
    let questions = [Question::NamespaceList, Question::Edges { namespace, name }];

    // warm Prometheus' page cache and the connections; keep each answer for the proxy
    let mut answers = Vec::new();
    for q in &questions {
        let w = Duration::from_secs(WINDOW_SECS - 60);
        for promql in q.ours(w).into_iter().chain(q.plain(w)) {
            prometheus.query(&promql, evaluation_time()).await?;
        }
        let (_, body) = server
            .get(&format!("{}?t={}s", q.path(), WINDOW_SECS - 60))
            .await?;
        answers.push(body);
        requests += 1;
    }

    // cache misses: each request a window never asked before
    for (qi, q) in questions.iter().enumerate() {
        sample_load(machine);
        progress(start, &format!("  cache miss: {}", q.label()));
        let windows: Vec<u64> = (0..cfg.miss_samples as u64)
            .map(|i| WINDOW_SECS + 1 + qi as u64 * 500 + i)
            .collect();
        // the zero-work proxy answers with the server's answer to this question
        let body_file = dir.join("proxy-body.json");
        std::fs::write(&body_file, &answers[qi])?;
        let (proxy, proxy_addr) = start_proxy(cfg, certs, &body_file, &prometheus.url())?;
        let mut server_cpu = CpuPerMiss::new(server.proc.0.id());
        let mut proxy_cpu = CpuPerMiss::new(proxy.0.id());
        // the five sides take turns in small chunks, so that noise from the rest of the
        // machine falls on all of them alike, in an order that changes from chunk to chunk
        // (see `Side::order`)
        let mut server_ms = Vec::new();
        let mut proxy_ms = Vec::new();
        let mut floor = Vec::new();
        let mut plain = Vec::new();
        let mut reference = Vec::new();
        let mut body_bytes = 0;
        let mut chunk = 5;
        let mut next = 0;
        let deadline = Instant::now() + 3 * cfg.miss_budget;
        for round in 0.. {
            if next >= windows.len() || (Instant::now() >= deadline && server_ms.len() >= 2) {
                break;
            }
            let ws = &windows[next..(next + chunk).min(windows.len())];
            next += ws.len();
            for side in Side::order(round) {
                match side {
                    Side::Server => {
                        let rep = server_cpu
                            .during(ws.len(), || timed_misses(cfg, certs, server.addr, q, ws))?;
                        requests += rep.requests;
                        body_bytes = rep.body_bytes / rep.requests.max(1);
                        if rep.latency_ms.mean > 500.0 {
                            chunk = 1;
                        }
                        server_ms.extend(&rep.each_ms);
                    }
                    Side::Proxy => {
                        let rep = proxy_cpu
                            .during(ws.len(), || timed_misses(cfg, certs, proxy_addr, q, ws))?;
                        proxy_ms.extend(&rep.each_ms);
                    }
                    Side::Floor => {
                        for &w in ws {
                            let ours = q.ours(Duration::from_secs(w));
                            floor.push(slowest_together(&prometheus, &ours).await?);
                        }
                    }
                    Side::Plain => {
                        for &w in ws {
                            let queries = q.plain(Duration::from_secs(w));
                            plain.push(slowest_alone(&prometheus, &queries).await?);
                        }
                    }
                    Side::Reference => {
                        for &w in ws {
                            let at = evaluation_time();
                            let t = Instant::now();
                            for promql in q.reference(Duration::from_secs(w)) {
                                prometheus.query(&promql, at).await?;
                            }
                            reference.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                }
            }
        }
        scale.misses.push(Miss {
            question: q.label().into(),
            path: q.path(),
            bytes: body_bytes,
            queries: q.ours(Duration::from_secs(WINDOW_SECS)).len(),
            reference_queries: q.reference(Duration::from_secs(WINDOW_SECS)).len(),
            server: Summary::of(&server_ms),
            proxy: Summary::of(&proxy_ms),
            floor: Summary::of(&floor),
            plain: Summary::of(&plain),
            reference: Summary::of(&reference),
            server_cpu_us: server_cpu.micros(),
            proxy_cpu_us: proxy_cpu.micros(),
            server_runs: server_cpu.runs(),
            proxy_runs: proxy_cpu.runs(),
        });
    }

    // cache hits, next to the trivial handler with a body of the same size
    for q in &questions {
        sample_load(machine);
        progress(start, &format!("  cache hit: {}", q.label()));
        let (mut hit, n) = measure_hit(cfg, certs, &server, q, EVALUATION_INTERVAL_SECS).await?;
        if hit.skipped.is_some() {
            progress(
                start,
                &format!("    a miss is too slow for the {EVALUATION_INTERVAL_SECS}s period: again with a {LONG_PERIOD_SECS}s one"),
            );
            let long = Server::start(
                cfg,
                certs,
                &prometheus.url(),
                &dir.join("server-long.log"),
                LONG_PERIOD_SECS,
            )
            .await?;
            // its requests are not the main server's: they stay out of the scale's count
            hit = measure_hit(cfg, certs, &long, q, LONG_PERIOD_SECS).await?.0;
        }
        requests += n;
        scale.hits.push(hit);
    }

    // the largest answer, then a full cache
    sample_load(machine);
    progress(start, "  all pods, then filling the cache");
    let pods = format!("{}/pods", apiservice::BASE_PATH);
    let (mut ms, mut floor, mut bytes) = (Vec::new(), Vec::new(), 0);
    let began = Instant::now();
    // 3 to 5 misses (windows never asked before), each next to its floor
    for i in 0..5 {
        if i >= 3 && began.elapsed() > Duration::from_secs(30) {
            break;
        }
        let path = format!("{pods}?t={}s", WINDOW_SECS + 1001 + i);
        let (m, body) = server.get(&path).await?;
        requests += 1;
        ms.push(m);
        bytes = body.len() as u64;
        let queries = plans::distinct_queries(&[path], Duration::from_secs(WINDOW_SECS))?;
        floor.push(slowest_together(&prometheus, &queries).await?);
    }
    scale.largest = Some(Single {
        path: pods,
        n: ms.len(),
        ms: Summary::of(&ms).p50,
        floor_ms: Summary::of(&floor).p50,
        bytes,
    });
    let fill = fill_targets(&scenario);
    let rep = run_load(
        cfg,
        certs,
        server.addr,
        &fill,
        &LoadOpts {
            h2: false,
            connections: 4,
            concurrency: 4,
            requests: fill.len() as u64,
            seconds: 60.0,
            each: false,
            warm: false,
        },
    )?;
    requests += rep.requests;
    let full = server.usage();
    scale.server = ServerUse {
        cpu_secs: 0.0,
        requests: 0,
        peak_rss: full.peak_rss_bytes,
        rss_full_cache: full.rss_bytes,
        cache_bytes: server.cache_bytes().await,
        fill_requests: rep.requests,
    };

    // many pollers
    let mut coalescing = None;
    if workloads == cfg.coalescing_at {
        sample_load(machine);
        progress(start, &format!("  {} concurrent pollers", cfg.pollers));
        let c = measure_pollers(
            cfg,
            certs,
            &server,
            &prometheus,
            &scenario,
            (workloads, written.edges),
        )
        .await?;
        requests += c.load.requests;
        coalescing = Some(c);
    }

    let end_usage = server.usage();
    scale.server.cpu_secs = end_usage.cpu_secs - usage0.cpu_secs;
    scale.server.requests = requests;
    scale.server.peak_rss = end_usage.peak_rss_bytes;
    scale.prometheus_peak_rss = prometheus.usage().peak_rss_bytes;
    drop(server);
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&tsdb);
    progress(start, "  done");
    Ok((scale, coalescing))
}

/// One hit run of the server (cache period `period_secs`) and one of the ceiling, with the
/// same load. The run starts after a miss and ends well before the period does, so every
/// request is a hit; a period too short for that leaves the hit `skipped`.
async fn measure_hit(
    cfg: &Config,
    certs: &Certs,
    server: &Server,
    q: &Question,
    period_secs: u64,
) -> Result<(Hit, u64)> {
    let path = q.path();
    let mut hit = Hit {
        question: q.label().into(),
        period_secs,
        ..Hit::default()
    };
    // start at a period boundary, unless most of a long period is still ahead
    if period_secs == EVALUATION_INTERVAL_SECS
        || period_left_ms(period_secs) < (period_secs * 1000 / 4) as i64
    {
        next_period(period_secs).await;
    }
    let (ms, body) = server.get(&path).await?;
    hit.bytes = body.len() as u64;
    // stop well before the period ends: every request must be a hit
    let left = period_left_ms(period_secs) as f64 / 1e3 - 1.5;
    if left < 1.5 {
        hit.skipped = Some(format!(
            "a miss takes {ms:.0} ms, too close to the {period_secs}s cache period"
        ));
        return Ok((hit, 1));
    }
    let opts = LoadOpts {
        h2: false,
        connections: HIT_CONCURRENCY,
        concurrency: HIT_CONCURRENCY,
        requests: 10_000_000,
        seconds: left.min(cfg.hit_secs),
        each: false,
        warm: false,
    };
    let targets = [Target {
        path: path.clone(),
        accept: None,
    }];
    let before = server.usage();
    hit.server = run_load(cfg, certs, server.addr, &targets, &opts)?;
    let after = server.usage();
    hit.cpu_us_per_request =
        (after.cpu_secs - before.cpu_secs) * 1e6 / hit.server.requests.max(1) as f64;
    let body_file = cfg.workdir.join("ceiling-body.json");
    std::fs::write(&body_file, &body)?;
    let (ceiling, addr) = start_ceiling(cfg, certs, &body_file)?;
    hit.ceiling = run_load(cfg, certs, addr, &targets, &opts)?;
    drop(ceiling);
    if hit.server.errors > 0 || hit.ceiling.errors > 0 {
        bail!(
            "hit run failed: {:?} / {:?}",
            hit.server.first_error,
            hit.ceiling.first_error
        );
    }
    Ok((hit.clone(), hit.server.requests + 1))
}

/// What fills the cache: every namespace's deployments, every deployment, and edges and
/// single objects of up to 200 workloads.
fn fill_targets(s: &Scenario) -> Vec<Target> {
    let b = apiservice::BASE_PATH;
    let mut paths = vec![format!("{b}/deployments")];
    paths.extend(
        s.namespace_names()
            .iter()
            .map(|ns| format!("{b}/namespaces/{ns}/deployments")),
    );
    for (ns, name) in s.workload_names().iter().take(200) {
        paths.push(format!("{b}/namespaces/{ns}/deployments/{name}"));
        paths.push(format!("{b}/namespaces/{ns}/deployments/{name}/edges"));
    }
    paths
        .into_iter()
        .map(|path| Target { path, accept: None })
        .collect()
}

/// Many concurrent pollers over h2 asking overlapping questions.
async fn measure_pollers(
    cfg: &Config,
    certs: &Certs,
    server: &Server,
    prometheus: &Prometheus,
    s: &Scenario,
    scale: (usize, usize),
) -> Result<Coalescing> {
    let b = apiservice::BASE_PATH;
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json".to_string();
    let names = s.workload_names();
    let mut targets = vec![Target {
        path: format!("{b}/namespaces"),
        accept: None,
    }];
    for ns in s.namespace_names().iter().take(5) {
        // Grafana: lists; kubectl: the trafficmetrics table (shares the deployments list)
        targets.push(Target {
            path: format!("{b}/namespaces/{ns}/deployments"),
            accept: None,
        });
        targets.push(Target {
            path: format!("{b}/namespaces/{ns}/trafficmetrics"),
            accept: Some(table.clone()),
        });
        // HPA-style: single objects; topology views: edges
        for (i, (_, name)) in names.iter().filter(|(n, _)| n == ns).take(5).enumerate() {
            targets.push(Target {
                path: format!("{b}/namespaces/{ns}/deployments/{name}"),
                accept: None,
            });
            if i < 2 {
                targets.push(Target {
                    path: format!("{b}/namespaces/{ns}/deployments/{name}/edges"),
                    accept: None,
                });
            }
        }
    }
    let paths: Vec<String> = targets.iter().map(|t| t.path.clone()).collect();
    let window = Duration::from_secs(WINDOW_SECS);
    let distinct = plans::distinct_queries(&paths, window)?;
    let per_round: usize = paths
        .iter()
        .map(|p| plans::distinct_queries(std::slice::from_ref(p), window).map_or(0, |q| q.len()))
        .sum();
    // interleave so that concurrent pollers ask different and overlapping questions
    let mut order: Vec<Target> = Vec::new();
    for i in 0..cfg.pollers.max(targets.len()) {
        order.push(targets[(i * 7) % targets.len()].clone());
    }
    let step = EVALUATION_INTERVAL_SECS as i64 * 1000;
    let before = prometheus.queries_answered().await?;
    let t0 = now_ms();
    let rep = run_load(
        cfg,
        certs,
        server.addr,
        &order,
        &LoadOpts {
            h2: true,
            connections: 10,
            concurrency: cfg.pollers,
            requests: 50_000_000,
            seconds: cfg.pollers_secs,
            each: false,
            warm: false,
        },
    )?;
    let t1 = now_ms();
    let after = prometheus.queries_answered().await?;
    let periods = (t1.div_euclid(step) - t0.div_euclid(step) + 1) as u64;
    Ok(Coalescing {
        scale,
        questions: targets.len(),
        distinct_queries: distinct.len(),
        periods,
        prometheus_queries: after.saturating_sub(before),
        allowed: distinct.len() as u64 * periods,
        uncached_queries: rep.requests * per_round as u64 / targets.len() as u64,
        load: rep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_light_side_follows_the_reference_plan_once_in_four_chunks() {
        let mut after_reference = Vec::new();
        for round in 0..4 {
            let order = Side::order(round);
            assert_eq!(order[0], Side::Reference);
            let mut sides = order.to_vec();
            sides.sort_by_key(|s| *s as u8);
            assert_eq!(
                sides,
                [
                    Side::Server,
                    Side::Proxy,
                    Side::Floor,
                    Side::Plain,
                    Side::Reference
                ],
                "each side once per chunk"
            );
            after_reference.push(order[1]);
        }
        after_reference.sort_by_key(|s| *s as u8);
        assert_eq!(
            after_reference,
            [Side::Server, Side::Proxy, Side::Floor, Side::Plain]
        );
    }
}
