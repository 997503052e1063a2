//! One environment per mesh reading ([`View`]): the shared demo dataset written as that mesh's
//! series into its own real Prometheus, and a mesh-metrics server configured for that mesh.
//!
//! Every mesh gets the **same traffic** (one [`Dataset`], generated once per test binary), so the
//! same resource has the same ground truth wherever the mesh's data can tell it, and servers
//! queried in the same evaluation interval must agree.

use std::io::Write;
use std::sync::OnceLock;

use meshsim::{Dataset, Mesh, PromServer, Scenario, View, STEP_SECS};

use crate::TestServer;

/// Data before the moment the dataset is generated (the longest window a test asks is 7 min).
const PAST_SECS: i64 = 10 * 60;
/// Data after it: the whole suite must finish within this.
const FUTURE_SECS: i64 = 20 * 60;

/// Every view with an environment, in a fixed order.
pub const VIEWS: [View; 7] = [
    View::Linkerd,
    View::Istio,
    View::Consul,
    View::Osm,
    View::OsmEnvoy,
    View::Kuma,
    View::Cilium,
];

/// Kinds of the demo's kind-less workload names (Istio, Hubble and Kuma name workloads without
/// a kind; `report*` covers both the CronJob name Istio and Hubble report and the Job's own name).
pub const DEMO_WORKLOAD_KINDS: &str = "workloadKinds:
    rules:
    - {kind: StatefulSet, namespace: shop, name: db}
    - {kind: DaemonSet, namespace: platform, name: node-agent}
    - {kind: Job, namespace: batch, name: \"report*\"}";

/// A mesh environment.
pub struct Env {
    /// The reading of the data this environment's server does.
    pub view: View,
    /// The simulated traffic (source of truth), shared by every environment.
    pub dataset: &'static Dataset,
    /// The real Prometheus holding the mesh's series (shared by views of one mesh).
    pub prom: &'static PromServer,
    /// mesh-metrics reading that Prometheus (AlwaysAllow).
    pub server: TestServer,
}

/// The demo traffic shared by every environment: from [`PAST_SECS`] before its first use to
/// [`FUTURE_SECS`] after, so every server's "now" stays inside it while tests run.
pub fn dataset() -> &'static Dataset {
    static DATASET: OnceLock<Dataset> = OnceLock::new();
    DATASET.get_or_init(|| {
        let now = chrono::Utc::now().timestamp() / STEP_SECS * STEP_SECS;
        Dataset::generate(&Scenario::demo(), now - PAST_SECS, now + FUTURE_SECS)
    })
}

/// The Prometheus holding `mesh`'s series of the shared dataset, started on first use.
pub fn prometheus(mesh: Mesh) -> &'static PromServer {
    static PROMS: [OnceLock<PromServer>; 6] = [const { OnceLock::new() }; 6];
    let i = Mesh::ALL
        .iter()
        .position(|&m| m == mesh)
        .expect("known mesh");
    PROMS[i].get_or_init(|| {
        PromServer::start(dataset(), mesh)
            .expect("Prometheus starts (apt-get install -y prometheus)")
    })
}

/// The backend YAML of a view's server (an item of `backends:`), for a Prometheus at `url`,
/// serving `namespaces` (empty: every namespace no other backend lists).
pub fn backend_yaml(view: View, name: &str, url: &str, namespaces: &[&str]) -> String {
    let mesh = view.mesh().name();
    let extra = match view {
        View::Istio | View::Cilium => DEMO_WORKLOAD_KINDS.to_string(),
        View::Kuma => format!("kumaMesh: default\n  {DEMO_WORKLOAD_KINDS}"),
        View::OsmEnvoy => "osmStats: envoy".to_string(),
        View::Linkerd | View::Consul | View::Osm => String::new(),
    };
    format!(
        "- name: {name}\n  mesh: {mesh}\n  namespaces: [{}]\n  prometheus: {{url: \"{url}\"}}\n  {extra}\n",
        namespaces.join(", ")
    )
}

/// Starts a server from a YAML configuration file (and extra flags).
pub fn start_with_config(yaml: &str, args: &[&str]) -> TestServer {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(yaml.as_bytes()).expect("write config");
    let path = file.path().to_str().expect("utf-8 path").to_string();
    let mut argv = vec!["--config", &path];
    argv.extend_from_slice(args);
    TestServer::start(&argv)
}

/// The environment of `view` (a [`Mesh`] converts to its main view), created on first use.
/// Linkerd, Consul and OSM servers are configured by flags alone (`--mesh`), the others by a
/// YAML file with their options.
pub fn env_for(view: impl Into<View>) -> &'static Env {
    static ENVS: [OnceLock<Env>; 7] = [const { OnceLock::new() }; 7];
    let view = view.into();
    let i = VIEWS.iter().position(|&v| v == view).expect("known view");
    ENVS[i].get_or_init(|| {
        let prom = prometheus(view.mesh());
        let url = prom.url();
        let server = match view {
            View::Linkerd | View::Consul | View::Osm => TestServer::start(&[
                "--mesh",
                view.mesh().name(),
                "--prometheus-url",
                &url,
                "--authorization-mode",
                "AlwaysAllow",
            ]),
            _ => start_with_config(
                &format!(
                    "authorizationMode: AlwaysAllow\nbackends:\n{}",
                    backend_yaml(view, &view.to_string(), &url, &[])
                ),
                &[],
            ),
        };
        Env {
            view,
            dataset: dataset(),
            prom,
            server,
        }
    })
}

/// The Linkerd environment (the one most API tests use).
pub fn env() -> &'static Env {
    env_for(Mesh::Linkerd)
}
