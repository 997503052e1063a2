//! `mesh-metrics-bench`: the benchmark runner behind `scripts/bench`.
//!
//! `run` generates each scale's dataset, loads it into a real Prometheus, starts the release
//! server, measures it with `mesh-metrics-load`, and writes `report.json` and `report.md`.
//! `ceiling` serves one fixed body over the server's HTTPS stack (the trivial handler the
//! hit path is compared with); `proxy` sends each request's plan to Prometheus and answers
//! a fixed body (the zero-work server the miss path is compared with).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use mesh_metrics_bench::{ceiling, proxy, runner};

/// The server's allocator (`server/src/main.rs`), so that the ceiling and the zero-work
/// proxy differ from the server only in the work they skip.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The mesh-metrics benchmark runner.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the benchmark and writes report.json and report.md to --out.
    Run {
        /// Scales 10 and 100 only, shorter runs.
        #[arg(long)]
        quick: bool,
        /// Scales as WORKLOADSxEDGES, comma-separated (overrides the defaults).
        #[arg(long, value_delimiter = ',')]
        scales: Vec<String>,
        /// Where report.json and report.md go.
        #[arg(long)]
        out: PathBuf,
        /// Work directory for datasets and logs (removed scale by scale).
        #[arg(long)]
        workdir: PathBuf,
        /// The release mesh-metrics binary.
        #[arg(long)]
        server_bin: PathBuf,
        /// The mesh-metrics-load binary.
        #[arg(long)]
        load_bin: PathBuf,
        /// Concurrent pollers of the coalescing run.
        #[arg(long, default_value_t = 1000)]
        pollers: usize,
    },
    /// Serves --body on 127.0.0.1 with the server's TLS stack until killed.
    Ceiling {
        #[command(flatten)]
        serving: Serving,
    },
    /// Serves the zero-work proxy on 127.0.0.1 with the server's TLS stack until killed:
    /// every request's plan goes to --prometheus-url, the answer is --body.
    Proxy {
        #[command(flatten)]
        serving: Serving,
        /// Prometheus' base URL.
        #[arg(long)]
        prometheus_url: String,
        /// As the server's --default-window, in seconds.
        #[arg(long)]
        default_window_secs: u64,
        /// As the server's --evaluation-interval, in seconds.
        #[arg(long)]
        evaluation_interval_secs: u64,
        /// As the server's --prometheus-timeout, in seconds.
        #[arg(long)]
        prometheus_timeout_secs: u64,
    },
}

/// What the ceiling and the proxy serve with.
#[derive(Args)]
struct Serving {
    /// PEM certificate.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    key: PathBuf,
    /// The body of every answer.
    #[arg(long)]
    body: PathBuf,
}

/// Binds a free loopback port, prints `listening on ADDR` (the runner reads it), and runs
/// `serve` on it on a multi-threaded runtime, as the server runs.
fn serve_announced<F, Fut>(serve: F) -> Result<()>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            println!("listening on {}", listener.local_addr()?);
            serve(listener).await
        })
}

/// Parses `1000x5000`.
fn parse_scale(s: &str) -> Result<(usize, usize)> {
    let (w, e) = s
        .split_once('x')
        .with_context(|| format!("scale {s:?}: expected WORKLOADSxEDGES"))?;
    let scale = (w.trim().parse()?, e.trim().parse()?);
    if scale.0 == 0 || scale.0 > 20_000 || scale.1 > 200_000 {
        bail!("scale {s:?} out of range (1..=20000 workloads, at most 200000 edges)");
    }
    Ok(scale)
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ceiling {
            serving: Serving { cert, key, body },
        } => {
            let body = bytes::Bytes::from(std::fs::read(&body)?);
            serve_announced(|listener| ceiling::serve(listener, &cert, &key, body))
        }
        Cmd::Proxy {
            serving: Serving { cert, key, body },
            prometheus_url,
            default_window_secs,
            evaluation_interval_secs,
            prometheus_timeout_secs,
        } => {
            let body = bytes::Bytes::from(std::fs::read(&body)?);
            let to = proxy::ProxyTo {
                prometheus: prometheus_url,
                default_window: Duration::from_secs(default_window_secs),
                evaluation_interval: Duration::from_secs(evaluation_interval_secs),
                timeout: Duration::from_secs(prometheus_timeout_secs),
            };
            serve_announced(|listener| proxy::serve(listener, &cert, &key, body, to))
        }
        Cmd::Run {
            quick,
            scales,
            out,
            workdir,
            server_bin,
            load_bin,
            pollers,
        } => {
            std::fs::create_dir_all(&out)?;
            let scales = if scales.is_empty() {
                if quick {
                    vec![(10, 20), (100, 500)]
                } else {
                    vec![(10, 20), (100, 500), (1000, 5000), (5000, 25000)]
                }
            } else {
                scales
                    .iter()
                    .map(|s| parse_scale(s))
                    .collect::<Result<_>>()?
            };
            let cfg = runner::Config {
                coalescing_at: if quick { 100 } else { 1000 }.min(scales.last().map_or(0, |s| s.0)),
                scales,
                pollers,
                workdir,
                server_bin,
                load_bin,
                self_bin: std::env::current_exe()?,
                miss_samples: if quick { 30 } else { 300 },
                miss_budget: Duration::from_secs(if quick { 15 } else { 45 }),
                hit_secs: if quick { 3.0 } else { 5.0 },
                pollers_secs: if quick { 12.0 } else { 25.0 },
                quick,
            };
            let report = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(runner::run(&cfg, Some(&out.join("partial.json"))))?;
            std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
            let md = report.markdown();
            std::fs::write(out.join("report.md"), &md)?;
            println!("{md}");
            Ok(())
        }
    }
}
