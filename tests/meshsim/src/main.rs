//! `meshsim`: writes a simulated mesh Prometheus dataset and its SMI ground truth.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use meshsim::{Dataset, Expected, ExpectedEdge, Mesh, Res, Scenario, STEP_SECS};
use serde::Serialize;

/// Service-mesh traffic simulator with SMI Traffic Metrics ground truth.
///
/// Simulates the demo application (namespaces platform, shop, payments, batch and the unmeshed
/// legacy) every 10 seconds and writes the mesh's Prometheus series plus the SMI values a correct
/// server must return.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/data.om (OpenMetrics with timestamps) and DIR/truth.json.
    ///
    /// Load the data with `promtool tsdb create-blocks-from openmetrics DIR/data.om TSDB_DIR`.
    /// Every series has a sample every 10 s from the start (value 0) to the end, so
    /// `increase(x[W])` at an aligned time is exact. The data may extend into the future on
    /// purpose: a server evaluates queries at the current time, so the dataset must cover the
    /// moments a demo or test runs. Traffic depends only on the offset from the start.
    ///
    /// truth.json holds, for each window (end - W, end] with end = --truth-at, every resource of
    /// every kind the mesh reports (of Namespace, Pod, Deployment, DaemonSet, StatefulSet, Job,
    /// Service) that served at least one request anywhere in the data (idle ones have zeros),
    /// named as the mesh names it, with:
    ///
    /// * success/failure counts, server side (all requests its meshed pods served, unmeshed
    ///   callers included; OSM: client side, meshed callers only); failure = HTTP 5xx, gRPC
    ///   2/4/13/14/15 (only where the mesh labels gRPC statuses: Linkerd, Istio), or no response;
    ///
    /// * p50/p90/p99 latency in ms as histogram_quantile computes it on the window's bucket
    ///   increments (null when nothing was observed);
    ///
    /// * its edges: "to" = calls it made, "from" = calls into it, both ends meshed (Cilium: any
    ///   pod), the peer being a resource of the same kind (a Deployment calling a StatefulSet has
    ///   no edge as a Deployment; use pods or namespaces), measured where the mesh measures them.
    ///   Every peer that exchanged traffic in the data is listed, with zeros when idle in the
    ///   window.
    Generate {
        /// Mesh whose metrics to emit: linkerd, istio, consul, osm, kuma or cilium. truth.json
        /// follows what that mesh's data can tell (for osm: its WASM statistics).
        #[arg(long, default_value = "linkerd")]
        mesh: Mesh,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// First timestamp (unix seconds, rounded down to 10 s); default: now - --past.
        #[arg(long)]
        start: Option<i64>,
        /// Last timestamp (unix seconds, rounded up to 10 s); default: now + --future.
        #[arg(long)]
        end: Option<i64>,
        /// Data before now when --start is not given (e.g. 90s, 20m, 1h30m).
        #[arg(long, default_value = "20m", value_parser = parse_duration)]
        past: i64,
        /// Data after now when --end is not given.
        #[arg(long, default_value = "40m", value_parser = parse_duration)]
        future: i64,
        /// End of the truth windows (unix seconds, rounded down to 10 s); default: now. Every
        /// window must fit inside the data.
        #[arg(long)]
        truth_at: Option<i64>,
        /// Comma-separated window lengths for truth.json (multiples of 10 s).
        #[arg(long, default_value = "30s,1m,5m", value_delimiter = ',', value_parser = parse_duration)]
        windows: Vec<i64>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            mesh,
            out,
            start,
            end,
            past,
            future,
            truth_at,
            windows,
        } => {
            let now = align_down(unix_now()?);
            let start = align_down(start.unwrap_or(now - past));
            let end = align_up(end.unwrap_or(now + future));
            let truth_at = align_down(truth_at.unwrap_or(now));
            let longest = windows.iter().copied().max().unwrap_or(0);
            if end <= start {
                bail!("end ({end}) must be after start ({start})");
            }
            if truth_at - longest < start || truth_at > end {
                bail!(
                    "--truth-at {truth_at} with a {longest}s window does not fit in the data [{start}, {end}]"
                );
            }
            generate(mesh, &out, start, end, truth_at, &windows)
        }
    }
}

fn generate(
    mesh: Mesh,
    out: &Path,
    start: i64,
    end: i64,
    truth_at: i64,
    windows: &[i64],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let t = Instant::now();
    eprintln!(
        "simulating {}s of traffic ({start}..={end})...",
        end - start
    );
    let ds = Dataset::generate(&Scenario::demo(), start, end);
    eprintln!("  done in {:.1}s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let path = out.join("data.om");
    eprintln!("writing {} ({mesh})...", path.display());
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut counter = Counting::new(BufWriter::with_capacity(1 << 20, file));
    ds.write_openmetrics(mesh, &mut counter)
        .and_then(|()| counter.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "  {} lines, {:.1} MB in {:.1}s",
        counter.lines,
        counter.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let path = out.join("truth.json");
    eprintln!("computing the truth at {truth_at} for windows {windows:?} s...");
    let doc = truth_document(&ds, mesh, truth_at, windows);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &doc)?;
    writeln!(w)?;
    w.flush()?;
    eprintln!(
        "  wrote {} in {:.1}s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Layout of truth.json.
#[derive(Serialize)]
struct TruthDoc {
    mesh: String,
    step_secs: i64,
    start: i64,
    end: i64,
    truth_at: i64,
    windows: Vec<WindowDoc>,
}

#[derive(Serialize)]
struct WindowDoc {
    window_secs: i64,
    resources: Vec<ResourceDoc>,
}

#[derive(Serialize)]
struct ResourceDoc {
    resource: Res,
    expected: Expected,
    edges: Vec<ExpectedEdge>,
}

fn truth_document(ds: &Dataset, mesh: Mesh, at: i64, windows: &[i64]) -> TruthDoc {
    let truth = ds.truth(mesh);
    let kinds = truth.view().kinds();
    TruthDoc {
        mesh: mesh.to_string(),
        step_secs: STEP_SECS,
        start: ds.start(),
        end: ds.end(),
        truth_at: at,
        windows: windows
            .iter()
            .map(|&w| WindowDoc {
                window_secs: w,
                resources: kinds
                    .iter()
                    .flat_map(|&k| truth.list(k, None, at, w))
                    .map(|(resource, expected)| ResourceDoc {
                        edges: truth.edges(&resource, at, w),
                        resource,
                        expected,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A writer that counts bytes and lines on the way through.
struct Counting<W> {
    inner: W,
    bytes: u64,
    lines: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Counting<W> {
        Counting {
            inner,
            bytes: 0,
            lines: 0,
        }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn unix_now() -> Result<i64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64)
}

fn align_down(t: i64) -> i64 {
    t.div_euclid(STEP_SECS) * STEP_SECS
}

fn align_up(t: i64) -> i64 {
    align_down(t + STEP_SECS - 1)
}

/// Parses `90s`, `20m`, `1h30m`, `600` (seconds) into seconds; must be a multiple of 10 s.
fn parse_duration(s: &str) -> Result<i64, String> {
    let mut total = 0i64;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("bad duration {s:?}: unknown unit {c:?}")),
        };
        let n: i64 = digits.parse().map_err(|_| format!("bad duration {s:?}"))?;
        total += n * unit;
        digits.clear();
    }
    if !digits.is_empty() {
        total += digits
            .parse::<i64>()
            .map_err(|_| format!("bad duration {s:?}"))?;
    }
    if total <= 0 || total % STEP_SECS != 0 {
        return Err(format!(
            "duration {s:?} must be a positive multiple of {STEP_SECS}s"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1m"), Ok(60));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("600"), Ok(600));
        assert!(parse_duration("15s").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn alignment() {
        assert_eq!(align_down(1_700_000_009), 1_700_000_000);
        assert_eq!(align_up(1_700_000_001), 1_700_000_010);
        assert_eq!(align_up(1_700_000_000), 1_700_000_000);
    }
}
