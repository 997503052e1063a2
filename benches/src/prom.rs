//! A real Prometheus on loopback for the benchmark: backfills an OpenMetrics file with
//! `promtool`, serves the blocks, answers instant queries, and counts the queries it has
//! answered (from its own `/metrics`). Processes are killed and files removed on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapters::prometheus::Direct;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use crate::procstat::{self, Usage};

/// What backfilling cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backfill {
    /// Wall time of `promtool tsdb create-blocks-from openmetrics`.
    pub elapsed: Duration,
    /// promtool's peak resident memory, bytes.
    pub peak_rss_bytes: u64,
    /// Size of the blocks on disk, bytes.
    pub tsdb_bytes: u64,
}

/// Turns `openmetrics` into TSDB blocks under `tsdb` (at most `limit` of wall time).
pub fn backfill(openmetrics: &Path, tsdb: &Path, limit: Duration) -> Result<Backfill> {
    std::fs::create_dir_all(tsdb)?;
    let log = tsdb.with_extension("promtool.log");
    let mut child = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(openmetrics)
        .arg(tsdb)
        .stdin(Stdio::null())
        .stdout(File::create(&log)?)
        .stderr(File::create(&log)?)
        .spawn()
        .context("starting promtool (apt-get install -y prometheus)")?;
    let (ok, elapsed, usage) = procstat::wait_measured(&mut child, limit)?;
    if !ok {
        bail!(
            "promtool failed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Ok(Backfill {
        elapsed,
        peak_rss_bytes: usage.peak_rss_bytes,
        tsdb_bytes: dir_size(tsdb),
    })
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The headers and form body of an instant query as mesh-metrics posts it to
/// `/api/v1/query`: `query`, `time` (Unix seconds) and Prometheus' own `timeout`.
pub fn query_form(promql: &str, time: &str, timeout: &str) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", promql)
        .append_pair("time", time)
        .append_pair("timeout", timeout)
        .finish();
    (headers, form.into())
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    /// For readiness and Prometheus' own metrics.
    http: reqwest::Client,
    /// For the timed queries: the server's own kind of connection.
    direct: Direct,
}

/// One timed instant query.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// Wall time from sending to the last byte of the answer.
    pub elapsed: Duration,
    /// Size of the answer body.
    pub bytes: usize,
}

impl Prometheus {
    /// Serves the blocks in `tsdb` on a free loopback port and waits until ready.
    pub async fn start(tsdb: &Path, workdir: &Path) -> Result<Prometheus> {
        let config = workdir.join("prometheus.yml");
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 10s\nscrape_configs: []\n",
        )?;
        let addr = free_loopback_addr()?;
        let log = workdir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?)
            .spawn()
            .context("starting prometheus (apt-get install -y prometheus)")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .build()?;
        let direct = Direct::for_url(
            &reqwest::Url::parse(&format!("http://{addr}"))?,
            Duration::from_secs(5),
        )
        .context(
            "the floor's queries need plain HTTP to Prometheus: unset HTTP_PROXY and ALL_PROXY",
        )?;
        let mut prom = Prometheus {
            child,
            addr,
            http,
            direct,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = prom.child.try_wait()? {
                bail!(
                    "prometheus exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let ready = prom
                .http
                .get(format!("{}/-/ready", prom.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(prom);
            }
            if Instant::now() > deadline {
                bail!("prometheus not ready after 120s; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its CPU time and memory.
    pub fn usage(&self) -> Usage {
        procstat::usage(self.pid()).unwrap_or_default()
    }

    /// Runs an instant query at `at_ms` the way mesh-metrics does (POST form, on the
    /// server's own kind of keep-alive connection, [`Direct`]), and checks it succeeded
    /// with a vector.
    pub async fn query(&self, promql: &str, at_ms: i64) -> Result<Timed> {
        let time = format!("{}.{:03}", at_ms.div_euclid(1000), at_ms.rem_euclid(1000));
        let (headers, form) = query_form(promql, &time, "60s");
        let t = Instant::now();
        let mut answer = self
            .direct
            .post("/api/v1/query", headers, form)
            .await
            .map_err(|e| anyhow::anyhow!("query {promql:?}: {e}"))?;
        let mut body = Vec::with_capacity(answer.content_length.unwrap_or(0) as usize);
        while let Some(piece) = answer
            .chunk()
            .await
            .map_err(|e| anyhow::anyhow!("query {promql:?}: {e}"))?
        {
            body.extend_from_slice(&piece);
        }
        let elapsed = t.elapsed();
        if answer.status != 200 || !body.starts_with(br#"{"status":"success""#) {
            bail!(
                "query {promql:?} failed (HTTP {}): {}",
                answer.status,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(Timed {
            elapsed,
            bytes: body.len(),
        })
    }

    /// Instant queries answered so far (any status), from Prometheus' own metrics.
    pub async fn queries_answered(&self) -> Result<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.starts_with("prometheus_http_requests_total{")
                    && l.contains(r#"handler="/api/v1/query""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

/// The path of a tool on `PATH`, or an error naming the package to install.
pub fn find_tool(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` not found on PATH; apt-get install -y prometheus"))
}
