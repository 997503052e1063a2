//! End-to-end harness: a simulated mesh dataset loaded into a real Prometheus
//! (Debian's `prometheus`, started on loopback by `meshsim::PromServer`) and the
//! real mesh-metrics server, started in-process through its own flag parser.
//!
//! One [`Env`] per mesh reading ([`env_for`]; [`env`] is Linkerd's) is shared by all tests
//! of the binary; every mesh gets the same simulated traffic ([`dataset`]). Servers with
//! other flags (Prometheus down, tight limits) are started with [`TestServer::start`].

mod meshes;

pub use meshes::{
    backend_yaml, dataset, env, env_for, prometheus, start_with_config, Env, DEMO_WORKLOAD_KINDS,
    VIEWS,
};

use std::time::Duration;

use adapters::model::Kind;
use apiservice::quantity;
use clap::Parser;
use mesh_metrics::config::{Config, Flags};
use meshsim::Expected;
use serde_json::Value;

/// The API base path.
pub const BASE: &str = apiservice::BASE_PATH;

/// A mesh-metrics server running on its own runtime.
pub struct TestServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<mesh_metrics::Server>,
}

impl TestServer {
    /// Starts a server with these command-line flags (`--secure-port 0` and
    /// `--bind-address 127.0.0.1` are added).
    pub fn start(args: &[&str]) -> TestServer {
        let mut argv = vec![
            "mesh-metrics",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            "0",
        ];
        argv.extend_from_slice(args);
        let flags = Flags::try_parse_from(argv).expect("flags");
        let config = Config::from_flags(flags).expect("config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        // block_on from a plain thread: callers may be inside another runtime
        let server = std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(mesh_metrics::start(&config, Duration::from_secs(1))))
                .join()
                .expect("start thread")
        })
        .expect("server starts");
        TestServer {
            runtime: Some(runtime),
            server: Some(server),
        }
    }

    /// `https://localhost:PORT` (the self-signed certificate names localhost).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.server().local_addr().port())
    }

    /// The serving certificate in PEM form.
    pub fn cert_pem(&self) -> String {
        self.server().cert_pem().to_string()
    }

    fn server(&self) -> &mesh_metrics::Server {
        self.server.as_ref().expect("running")
    }

    /// A new HTTPS client trusting the server's certificate. (A client's pooled
    /// connections belong to the runtime that opened them, and every test has its
    /// own runtime, so clients are not shared.)
    pub fn client(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(self.cert_pem().as_bytes()).expect("cert");
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    /// GET `path`; returns status, content type and body as JSON (or a JSON string for text).
    pub async fn get(&self, path: &str) -> (u16, String, Value) {
        self.request(reqwest::Method::GET, path).await
    }

    /// Sends `method` to `path`.
    pub async fn request(&self, method: reqwest::Method, path: &str) -> (u16, String, Value) {
        let resp = self
            .client()
            .request(method, format!("{}{path}", self.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, ctype, body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) {
            std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(server.shutdown(Duration::from_millis(200))));
            });
            runtime.shutdown_background();
        }
    }
}

/// Maps the simulator's kind to the server's.
pub fn kind(k: meshsim::Kind) -> Kind {
    match k {
        meshsim::Kind::Namespace => Kind::Namespace,
        meshsim::Kind::Pod => Kind::Pod,
        meshsim::Kind::Deployment => Kind::Deployment,
        meshsim::Kind::DaemonSet => Kind::DaemonSet,
        meshsim::Kind::StatefulSet => Kind::StatefulSet,
        meshsim::Kind::Job => Kind::Job,
        meshsim::Kind::Service => Kind::Service,
    }
}

/// The SMI kind string the server puts in `resource.kind`.
pub fn kind_string(k: meshsim::Kind) -> &'static str {
    apiservice::render::kind_name(kind(k))
}

/// The API path of one object (`/namespaces/ns/kinds/name` or `/namespaces/name`).
pub fn object_path(r: &meshsim::Res) -> String {
    match &r.namespace {
        Some(ns) => format!(
            "{BASE}/namespaces/{ns}/{}/{}",
            kind(r.kind).plural(),
            r.name
        ),
        None => format!("{BASE}/namespaces/{}", r.name),
    }
}

/// Unix seconds of an object's `timestamp`.
pub fn timestamp(obj: &Value) -> i64 {
    let s = obj["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("RFC3339")
        .timestamp()
}

/// The value of metric `name` of an object, if it has one.
pub fn metric<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_str())
}

/// Asserts that an object's five metrics equal the ground truth.
///
/// Counts must be exact (the dataset's samples sit on the evaluation grid, so
/// `increase()` does not extrapolate). Latencies are truncated to 1/1000 ms by the
/// wire format, so the served value must lie in (truth - 0.001, truth].
pub fn assert_metrics(obj: &Value, exp: &Expected, ctx: &str) {
    let names: Vec<&str> = obj["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "p99_response_latency",
            "p90_response_latency",
            "p50_response_latency",
            "success_count",
            "failure_count"
        ],
        "{ctx}"
    );
    assert_eq!(
        metric(obj, "success_count").map(str::to_string),
        Some(quantity::format_milli_int(exp.success as i64 * 1000)),
        "{ctx}: success_count"
    );
    assert_eq!(
        metric(obj, "failure_count").map(str::to_string),
        Some(quantity::format_milli_int(exp.failure as i64 * 1000)),
        "{ctx}: failure_count"
    );
    let served: Vec<Option<f64>> = [
        "p50_response_latency",
        "p90_response_latency",
        "p99_response_latency",
    ]
    .iter()
    .map(|n| metric(obj, n).map(|v| quantity::parse(v).expect("quantity")))
    .collect();
    match exp.latency_ms {
        None => assert!(
            served.iter().all(Option::is_none),
            "{ctx}: no latency expected, got {served:?}"
        ),
        Some(truth) => {
            for (s, t) in served.iter().zip(truth) {
                let s = s.unwrap_or_else(|| panic!("{ctx}: latency missing, expected {truth:?}"));
                assert!(
                    s <= t + 1e-9 && s > t - 0.001 - 1e-9,
                    "{ctx}: latency {served:?} != truth {truth:?}"
                );
            }
        }
    }
}
