//! `mesh-metrics-load`: a bounded HTTPS load generator. Sends GETs from a targets file over a
//! fixed set of keep-alive connections (HTTP/1.1, or h2 with `--h2`) in a closed loop until
//! `--requests` were sent or `--duration` passed, then prints a JSON report (throughput and
//! latency percentiles) on stdout. Only loopback addresses are accepted. With
//! `--concurrency 1` it runs on one thread (the runner's own Prometheus client does too).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use mesh_metrics_bench::load::{self, Plan, Target};

/// Bounded HTTPS load generator for the mesh-metrics benchmark.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Server address, e.g. 127.0.0.1:8443 (loopback only).
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// PEM certificate(s) to trust.
    #[arg(long)]
    ca: PathBuf,
    /// File of targets, one per line: PATH or PATH<TAB>ACCEPT; taken in order, round robin.
    #[arg(long)]
    targets: PathBuf,
    /// Use h2 (else HTTP/1.1 keep-alive).
    #[arg(long)]
    h2: bool,
    /// TCP+TLS connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight (HTTP/1.1: one per connection).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Report every latency too (request order).
    #[arg(long)]
    each: bool,
    /// Ask PATH once on every connection before timing starts (untimed).
    #[arg(long, value_name = "PATH")]
    warm: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        bail!("{} is not a loopback address", args.addr);
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    let text = std::fs::read_to_string(&args.targets)
        .with_context(|| format!("reading {}", args.targets.display()))?;
    let targets: Vec<Target> = text.lines().filter_map(Target::parse).collect();
    let plan = Plan {
        addr: args.addr,
        ca_pem: std::fs::read(&args.ca)
            .with_context(|| format!("reading {}", args.ca.display()))?,
        h2: args.h2,
        connections: args.connections,
        concurrency: args.concurrency,
        max_requests: args.requests,
        duration: Duration::from_secs_f64(args.seconds),
        targets,
        record_each: args.each,
        warm: args.warm,
    };
    // One request in flight needs no second thread: a sequential run is timed by a
    // single-threaded client, as the runner's floor queries to Prometheus are, so that
    // hand-offs between worker threads in the client count against neither side.
    let mut builder = if args.concurrency == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder.enable_all().build()?;
    let report = runtime.block_on(load::run(plan))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
