//! The load generator's engine: a fixed number of HTTPS connections (HTTP/1.1 keep-alive, one
//! request in flight per connection, or h2 with many streams per connection), a fixed number
//! of concurrent workers sending GETs in a closed loop, bounded by a request count and a
//! duration, recording every latency. TLS handshakes happen before the clock starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::stats::Summary;

/// One request to send: a path (with query) and an optional `Accept` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Path and query, e.g. `/apis/metrics.smi-spec.io/v1alpha1/namespaces?t=31s`.
    pub path: String,
    /// `Accept` header value, if any.
    pub accept: Option<String>,
}

impl Target {
    /// Parses a line of a targets file: `PATH` or `PATH<TAB>ACCEPT`.
    pub fn parse(line: &str) -> Option<Target> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.starts_with('#') {
            return None;
        }
        let (path, accept) = match line.split_once('\t') {
            Some((p, a)) => (p, Some(a.to_string())),
            None => (line, None),
        };
        Some(Target {
            path: path.to_string(),
            accept,
        })
    }

    /// The line [`Target::parse`] reads back.
    pub fn line(&self) -> String {
        match &self.accept {
            Some(a) => format!("{}\t{a}", self.path),
            None => self.path.clone(),
        }
    }
}

/// How to generate load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `host:port` on loopback.
    pub addr: std::net::SocketAddr,
    /// PEM certificates to trust.
    pub ca_pem: Vec<u8>,
    /// h2 (ALPN `h2`) instead of HTTP/1.1.
    pub h2: bool,
    /// TCP+TLS connections.
    pub connections: usize,
    /// Requests in flight at once (HTTP/1.1: at most `connections`).
    pub concurrency: usize,
    /// Stop after this many requests.
    pub max_requests: u64,
    /// Stop after this long.
    pub duration: Duration,
    /// What to ask, taken in order (request `i` asks `targets[i % len]`).
    pub targets: Vec<Target>,
    /// Include every latency in the report (for sequential, distinct requests).
    pub record_each: bool,
    /// Asked once on every connection before the clock starts, untimed: a long-lived
    /// client (kube-apiserver) talks over warm connections.
    pub warm: Option<String>,
}

/// What a run measured (the load generator prints it as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Requests completed (any status).
    pub requests: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests that failed at the transport level or were not 2xx.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Wall time from the first request to the last answer, seconds.
    pub elapsed_secs: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Response body bytes received.
    pub body_bytes: u64,
    /// Latency percentiles, milliseconds.
    pub latency_ms: Summary,
    /// Every latency (ms), in request order, when asked for.
    pub each_ms: Vec<f64>,
    /// Protocol used (`HTTP/1.1` or `h2`).
    pub protocol: String,
    /// Connections used.
    pub connections: usize,
    /// Concurrency used.
    pub concurrency: usize,
}

/// A connection's request sender (h2 senders are cloned, one per worker).
enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// Another handle on the same connection (h2 only).
    fn share(&self) -> Option<Sender> {
        match self {
            Sender::H1(_) => None,
            Sender::H2(s) => Some(Sender::H2(s.clone())),
        }
    }
}

fn tls_connector(ca_pem: &[u8], h2: bool) -> Result<TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| anyhow!("CA PEM: {e:?}"))?;
        roots.add(cert).context("adding the CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(TlsConnector::from(Arc::new(cfg)))
}

async fn connect(plan: &Plan, tls: &TlsConnector) -> Result<Sender> {
    let tcp = TcpStream::connect(plan.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    let stream = tls.connect(name, tcp).await?;
    let io = TokioIo::new(stream);
    if plan.h2 {
        let (send, conn) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        Ok(Sender::H2(send))
    } else {
        let (send, conn) = http1::handshake(io).await?;
        tokio::spawn(conn);
        Ok(Sender::H1(send))
    }
}

/// Sends one GET; returns (status, body bytes).
async fn send(sender: &mut Sender, plan: &Plan, target: &Target) -> Result<(u16, usize)> {
    let mut req = http::Request::get(target.path.as_str());
    req = match sender {
        Sender::H1(_) => req.header(http::header::HOST, "localhost"),
        Sender::H2(_) => req
            .uri(format!(
                "https://localhost:{}{}",
                plan.addr.port(),
                target.path
            ))
            .version(http::Version::HTTP_2),
    };
    if let Some(a) = &target.accept {
        req = req.header(http::header::ACCEPT, a);
    }
    let req = req.body(Empty::<Bytes>::new())?;
    let resp = match sender {
        Sender::H1(s) => {
            s.ready().await?;
            s.send_request(req).await?
        }
        Sender::H2(s) => {
            s.ready().await?;
            s.send_request(req).await?
        }
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body.len()))
}

/// Runs the plan.
pub async fn run(plan: Plan) -> Result<Report> {
    if plan.targets.is_empty() {
        return Err(anyhow!("no targets"));
    }
    let tls = tls_connector(&plan.ca_pem, plan.h2)?;
    let connections = if plan.h2 {
        plan.connections.max(1)
    } else {
        plan.connections.max(1).min(plan.concurrency.max(1))
    };
    let concurrency = if plan.h2 {
        plan.concurrency.max(1)
    } else {
        connections
    };
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(
            connect(&plan, &tls)
                .await
                .with_context(|| format!("connecting to {}", plan.addr))?,
        );
    }
    if let Some(path) = &plan.warm {
        let warm = Target {
            path: path.clone(),
            accept: None,
        };
        for sender in &mut senders {
            let (status, _) = send(sender, &plan, &warm)
                .await
                .with_context(|| format!("warming a connection with {path}"))?;
            if !(200..300).contains(&status) {
                return Err(anyhow!("warming a connection: HTTP {status} for {path}"));
            }
        }
    }
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let body_bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut workers = Vec::with_capacity(concurrency);
    let mut owned = senders.into_iter();
    let mut shared = Vec::new();
    for w in 0..concurrency {
        let mut sender = match owned.next() {
            Some(s) => {
                if let Some(h2) = s.share() {
                    shared.push(h2);
                }
                s
            }
            None => shared[w % connections]
                .share()
                .ok_or_else(|| anyhow!("HTTP/1.1 needs one connection per worker"))?,
        };
        let (plan, next, body_bytes, errors, first_error) = (
            plan.clone(),
            next.clone(),
            body_bytes.clone(),
            errors.clone(),
            first_error.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut lat: Vec<(u64, f64)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.max_requests || Instant::now() >= deadline {
                    break;
                }
                let target = &plan.targets[(i % plan.targets.len() as u64) as usize];
                let t = Instant::now();
                let result = send(&mut sender, &plan, target).await;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                match result {
                    Ok((status, n)) => {
                        body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if !(200..300).contains(&status) {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().expect("lock").get_or_insert_with(|| {
                                format!("HTTP {status} for {}", target.path)
                            });
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .expect("lock")
                            .get_or_insert_with(|| format!("{e:#} for {}", target.path));
                    }
                }
                lat.push((i, ms));
            }
            lat
        }));
    }
    let mut all: Vec<(u64, f64)> = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by_key(|&(i, _)| i);
    let latencies: Vec<f64> = all.iter().map(|&(_, ms)| ms).collect();
    let requests = latencies.len() as u64;
    let errors = errors.load(Ordering::Relaxed);
    let first_error = first_error.lock().expect("lock").clone();
    Ok(Report {
        requests,
        ok: requests - errors.min(requests),
        errors,
        first_error,
        elapsed_secs: elapsed,
        throughput_rps: requests as f64 / elapsed.max(1e-9),
        body_bytes: body_bytes.load(Ordering::Relaxed),
        latency_ms: Summary::of(&latencies),
        each_ms: if plan.record_each {
            latencies
        } else {
            Vec::new()
        },
        protocol: if plan.h2 { "h2" } else { "HTTP/1.1" }.into(),
        connections,
        concurrency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lines_round_trip() {
        let t = Target::parse("/a?t=1s\tapplication/json;as=Table;v=v1;g=meta.k8s.io\n").unwrap();
        assert_eq!(t.path, "/a?t=1s");
        assert_eq!(
            t.accept.as_deref(),
            Some("application/json;as=Table;v=v1;g=meta.k8s.io")
        );
        assert_eq!(Target::parse(&t.line()), Some(t));
        assert_eq!(Target::parse("# comment"), None);
        assert_eq!(Target::parse("  "), None);
        assert_eq!(Target::parse("/b").unwrap().accept, None);
    }
}
