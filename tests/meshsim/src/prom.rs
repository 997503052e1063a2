//! Test harness: a real Prometheus on 127.0.0.1 serving a backfilled dataset.
//!
//! The dataset is written to a temporary directory, turned into TSDB blocks with
//! `promtool tsdb create-blocks-from openmetrics`, and served by `prometheus` with an empty scrape
//! configuration. The process is killed and the directory removed on drop, or when the test
//! process exits (servers shared through statics are never dropped).
//!
//! [`PromServer::replica`] serves a copy of a server's blocks from a second Prometheus behind a
//! `--web.config.file` ([`WebConfig`]: TLS, client certificates, basic auth), without backfilling
//! again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::{Dataset, Mesh};

/// TSDB directory inside a server's temporary directory.
const TSDB: &str = "tsdb";

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus serving one dataset. Dropping it kills the process and deletes its files.
pub struct PromServer {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
    tls: bool,
}

/// Prometheus' web configuration (`--web.config.file`): TLS, client certificates, basic auth.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The YAML (`tls_server_config`, `basic_auth_users`, ...); paths in it must be absolute.
    pub yaml: String,
    /// Whether it enables TLS (the server's URL is then `https://`).
    pub tls: bool,
}

/// One element of an instant-vector query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (including `__name__` when not aggregated away).
    pub labels: BTreeMap<String, String>,
    /// The value (NaN and infinities included).
    pub value: f64,
}

impl PromServer {
    /// Writes `dataset` as `mesh` metrics, backfills it and starts Prometheus on it.
    pub fn start(dataset: &Dataset, mesh: Mesh) -> Result<PromServer> {
        let tools = Tools::find()?; // Fail before writing hundreds of MB.
        let dir = temp_dir()?;
        let om = dir.path().join("data.om");
        let file = File::create(&om).with_context(|| format!("creating {}", om.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        dataset
            .write_openmetrics(mesh, &mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {}", om.display()))?;
        drop(out);
        tools.backfill(&dir, &om)?;
        std::fs::remove_file(&om)?; // Hundreds of MB, no longer needed.
        tools.serve(dir, None)
    }

    /// Starts a second Prometheus on a copy of this one's data, behind `web`. Readiness is read
    /// from its log, since its HTTP endpoints need the credentials `web` demands.
    pub fn replica(&self, web: &WebConfig) -> Result<PromServer> {
        let tools = Tools::find()?;
        let dir = temp_dir()?;
        let (from, to) = (self.dir.path().join(TSDB), dir.path().join(TSDB));
        std::fs::create_dir_all(&to)?;
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            // Blocks are immutable directories with a meta.json; the head, WAL and lock are not.
            if entry.path().join("meta.json").is_file() {
                copy_dir(&entry.path(), &to.join(entry.file_name()))
                    .with_context(|| format!("copying block {}", entry.path().display()))?;
            }
        }
        tools.serve(dir, Some(web))
    }

    /// Backfills an existing OpenMetrics file (e.g. `data.om` from `meshsim generate`) and starts
    /// Prometheus on it.
    pub fn start_from_file(openmetrics: &Path) -> Result<PromServer> {
        let tools = Tools::find()?;
        let dir = temp_dir()?;
        tools.backfill(&dir, openmetrics)?;
        tools.serve(dir, None)
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (`https://` behind a TLS [`WebConfig`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Runs an instant query at `time` (unix seconds) and returns its vector result (plain HTTP
    /// without credentials: not for a [`PromServer::replica`] behind a [`WebConfig`]).
    pub fn query(&self, promql: &str, time: i64) -> Result<Vec<Sample>> {
        let path = format!("/api/v1/query?query={}&time={time}", percent_encode(promql));
        let (status, body) = http_get(self.addr, &path)?;
        let json: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("HTTP {status} from Prometheus, not JSON: {body}"))?;
        if json["status"] != "success" {
            bail!("query {promql:?} failed (HTTP {status}): {body}");
        }
        let data = &json["data"];
        if data["resultType"] != "vector" {
            bail!(
                "query {promql:?} returned {}, not a vector",
                data["resultType"]
            );
        }
        let samples = data["result"]
            .as_array()
            .ok_or_else(|| anyhow!("no result in {body}"))?;
        samples
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| anyhow!("bad sample value in {s}"))?;
                Ok(Sample { labels, value })
            })
            .collect()
    }

    /// Polls `/-/ready` (or, behind a web configuration, the log) until Prometheus is ready, the
    /// process exits, or the timeout passes.
    fn wait_ready(&mut self, log: &Path, web: bool) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "prometheus exited ({status}) before becoming ready:\n{}",
                    tail(log)
                );
            }
            let ready = if web {
                std::fs::read_to_string(log)
                    .is_ok_and(|l| l.contains("Server is ready to receive web requests"))
            } else {
                matches!(http_get(self.addr, "/-/ready"), Ok((200, _)))
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "prometheus not ready after {READY_TIMEOUT:?} (data in {}):\n{}",
                    self.dir.path().display(),
                    tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        crate::exit_guard::forget(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus binaries.
struct Tools {
    prometheus: PathBuf,
    promtool: PathBuf,
}

impl Tools {
    /// Finds both binaries on `PATH`.
    fn find() -> Result<Tools> {
        Ok(Tools {
            prometheus: find_tool("prometheus")?,
            promtool: find_tool("promtool")?,
        })
    }

    /// Turns an OpenMetrics file into TSDB blocks under `dir`.
    fn backfill(&self, dir: &TempDir, openmetrics: &Path) -> Result<()> {
        let promtool = &self.promtool;
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(openmetrics)
            .arg(dir.path().join(TSDB))
            .output()
            .with_context(|| format!("running {}", promtool.display()))?;
        if !out.status.success() {
            bail!(
                "promtool tsdb create-blocks-from openmetrics {} failed ({}):\n{}",
                openmetrics.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts Prometheus on the TSDB in `dir` (behind `web` if given) and waits until it is ready.
    fn serve(&self, dir: TempDir, web: Option<&WebConfig>) -> Result<PromServer> {
        let prometheus = &self.prometheus;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 10s\nscrape_configs: []\n",
        )?;
        let addr = free_loopback_addr()?;
        let log_path = dir.path().join("prometheus.log");
        let log = File::create(&log_path)?;
        let mut command = Command::new(prometheus);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join(TSDB).display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=30d");
        if let Some(web) = web {
            let file = dir.path().join("web.yml");
            std::fs::write(&file, &web.yaml)?;
            command.arg(format!("--web.config.file={}", file.display()));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", prometheus.display()))?;
        crate::exit_guard::register(child.id(), dir.path().to_path_buf());
        let mut server = PromServer {
            child,
            addr,
            dir,
            tls: web.is_some_and(|w| w.tls),
        };
        server.wait_ready(&log_path, web.is_some())?;
        Ok(server)
    }
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// A fresh temporary directory for one server.
fn temp_dir() -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix("meshsim-prom-")
        .tempdir()
        .context("creating a temporary directory")
}

/// Finds an executable on `PATH`.
fn find_tool(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("`{name}` not found on PATH; install Prometheus with `apt-get install -y prometheus`")
        })
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Minimal HTTP/1.0 GET (the server closes the connection, no chunked encoding).
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response: {response}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP status line: {head}"))?;
    Ok((status, body.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(
            percent_encode(r#"sum(x{a="b c"}[1m])"#),
            "sum%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29"
        );
    }

    #[test]
    fn missing_tool_mentions_apt() {
        let err = find_tool("definitely-not-a-prometheus-binary").unwrap_err();
        assert!(err.to_string().contains("apt-get install -y prometheus"));
    }
}
