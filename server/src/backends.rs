//! Mesh backends (a mesh adapter + its cached Prometheus) and the routing of a
//! question to them.
//!
//! * A question about one namespace (an object, its edges, a namespaced list) goes to
//!   the backend that lists the namespace, else to the catch-all backend (the one with
//!   no `namespaces`), else nowhere: an empty list, or zeros for an object.
//! * A cluster-wide list asks every backend whose mesh reports that kind and keeps
//!   each item from the backend that serves its namespace.
//! * Discovery advertises the **union** of the backends' kinds; asking a backend for a
//!   kind its mesh cannot report answers 404 with the reason
//!   ([`PlanError::UnsupportedKind`], [`PlanError::UnsupportedEdges`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::cilium::Cilium;
use adapters::consul::Consul;
use adapters::engine::{collect, CollectError};
use adapters::istio::Istio;
use adapters::kuma::Kuma;
use adapters::linkerd::Linkerd;
use adapters::mesh::{Mesh, PlanError};
use adapters::model::{
    Kind, ResourceStats, StatsQuery, StatsResult, Target, TrafficStats, UnixMillis,
};
use adapters::osm::{Osm, OsmStats};
use adapters::prometheus::PrometheusClient;
use adapters::workloads::WorkloadKinds;

use crate::cache::CachedExecutor;
use crate::config::{BackendConfig, MeshKind};

/// One configured backend.
pub struct Backend {
    /// Its configured name.
    pub name: String,
    /// Namespaces it serves (empty: all unclaimed ones).
    pub namespaces: Vec<String>,
    /// The mesh adapter.
    pub mesh: Arc<dyn Mesh>,
    /// Its Prometheus, behind the cache.
    pub exec: CachedExecutor<PrometheusClient>,
}

/// All backends.
pub struct Backends(Vec<Backend>);

/// Builds the adapter a backend configures; fails on options its mesh does not read.
pub fn mesh_of(c: &BackendConfig) -> Result<Arc<dyn Mesh>, String> {
    let uses = |option: &str, set: bool, meshes: &[MeshKind]| {
        if set && !meshes.contains(&c.mesh) {
            let names: Vec<String> = meshes
                .iter()
                .map(|m| format!("{m:?}").to_lowercase())
                .collect();
            Err(format!(
                "backend {:?}: {option} applies to mesh {} only",
                c.name,
                names.join(", ")
            ))
        } else {
            Ok(())
        }
    };
    uses(
        "workloadKinds",
        c.workload_kinds != WorkloadKinds::default(),
        &[MeshKind::Istio, MeshKind::Cilium, MeshKind::Kuma],
    )?;
    uses(
        "consulDatacenter",
        c.consul_datacenter.is_some(),
        &[MeshKind::Consul],
    )?;
    uses("kumaMesh", c.kuma_mesh.is_some(), &[MeshKind::Kuma])?;
    uses(
        "osmStats",
        c.osm_stats != OsmStats::default(),
        &[MeshKind::Osm],
    )?;
    let scrape = c.scrape_labels.clone();
    let kinds = c.workload_kinds.clone();
    Ok(match c.mesh {
        MeshKind::Linkerd => Arc::new(Linkerd::new(scrape)),
        MeshKind::Istio => Arc::new(Istio::new(scrape, kinds)),
        MeshKind::Consul => Arc::new(Consul::new(scrape, c.consul_datacenter.clone())),
        MeshKind::Osm => Arc::new(Osm::new(scrape, c.osm_stats)),
        MeshKind::Kuma => Arc::new(Kuma::new(scrape, c.kuma_mesh.clone(), kinds)),
        MeshKind::Cilium => Arc::new(Cilium::new(kinds)),
    })
}

impl Backends {
    /// Builds the backends; fails on an unusable Prometheus configuration, an option
    /// the backend's mesh does not read, or a namespace claimed twice.
    pub fn new(
        configs: &[BackendConfig],
        ttl: Duration,
        cache_max_bytes: u64,
    ) -> Result<Self, String> {
        let mut claimed: HashMap<&str, &str> = HashMap::new();
        for c in configs {
            for ns in &c.namespaces {
                if let Some(other) = claimed.insert(ns, &c.name) {
                    return Err(format!(
                        "namespace {ns:?} is listed by backends {other:?} and {:?}; each namespace has one backend",
                        c.name
                    ));
                }
            }
        }
        let share = cache_max_bytes / configs.len().max(1) as u64;
        configs
            .iter()
            .map(|c| {
                let mesh = mesh_of(c)?;
                let client = PrometheusClient::new(c.prometheus.clone())
                    .map_err(|e| format!("backend {:?}: {e}", c.name))?;
                Ok(Backend {
                    name: c.name.clone(),
                    namespaces: c.namespaces.clone(),
                    mesh,
                    exec: CachedExecutor::new(client, ttl, share),
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Backends)
    }

    /// The backends, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Backend> {
        self.0.iter()
    }

    /// The kinds at least one backend can describe (what discovery advertises).
    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.0.iter().any(|b| b.mesh.kinds().contains(k)))
            .collect()
    }

    /// Answers `q` as one part of a request combining several (the `trafficmetrics` list
    /// asks every workload kind): a kind the serving backend cannot report contributes
    /// nothing instead of failing the whole answer.
    pub async fn collect_part(&self, q: &StatsQuery) -> Result<StatsResult, CollectError> {
        if self.supports(q) {
            self.collect(q).await
        } else {
            Ok(match q.target {
                Target::Edges(_) => StatsResult::Edges(Vec::new()),
                _ => StatsResult::Resources(Vec::new()),
            })
        }
    }

    /// Whether the backend answering `q` can describe its kind (a cluster-wide list:
    /// whether any backend can).
    fn supports(&self, q: &StatsQuery) -> bool {
        let kind = q.target.kind();
        match namespace_of(&q.target) {
            Some(ns) => self
                .route(ns)
                .is_none_or(|b| b.mesh.kinds().contains(&kind)),
            None => self.0.iter().any(|b| b.mesh.kinds().contains(&kind)),
        }
    }

    /// The backend serving `namespace`.
    fn route(&self, namespace: &str) -> Option<&Backend> {
        self.0
            .iter()
            .find(|b| b.namespaces.iter().any(|n| n == namespace))
            .or_else(|| self.0.iter().find(|b| b.namespaces.is_empty()))
    }

    /// Whether `backend` is the one serving `namespace`.
    fn owns(&self, backend: &Backend, namespace: &str) -> bool {
        self.route(namespace)
            .is_some_and(|b| std::ptr::eq(b, backend))
    }

    /// Answers `q` from the backend(s) serving it.
    pub async fn collect(&self, q: &StatsQuery) -> Result<StatsResult, CollectError> {
        if let Some(ns) = namespace_of(&q.target) {
            return match self.route(ns) {
                Some(b) => collect(b.mesh.as_ref(), &b.exec, q).await,
                None => Ok(unserved(&q.target)),
            };
        }
        let kind = q.target.kind();
        let able: Vec<&Backend> = self
            .0
            .iter()
            .filter(|b| b.mesh.kinds().contains(&kind))
            .collect();
        if able.is_empty() {
            let mesh = self.0.first().map_or("configured", |b| b.mesh.name());
            return Err(PlanError::UnsupportedKind { mesh, kind }.into());
        }
        let answers =
            futures::future::try_join_all(able.into_iter().map(|b| async move {
                collect(b.mesh.as_ref(), &b.exec, q).await.map(|r| (b, r))
            }))
            .await?;
        let mut merged = Vec::new();
        for (b, r) in answers {
            if let StatsResult::Resources(items) = r {
                merged.extend(
                    items
                        .into_iter()
                        .filter(|i| self.owns(b, i.resource.home_namespace())),
                );
            }
        }
        merged.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(StatsResult::Resources(merged))
    }

    /// Answers `target` over `window` at every `step` from `start` to `end`, with
    /// Prometheus range queries; a single instant (`start == end`) goes through the
    /// cached instant path. Cluster-wide lists merge backends per instant.
    pub async fn collect_range(
        &self,
        target: &Target,
        window: std::time::Duration,
        start: UnixMillis,
        end: UnixMillis,
        step: std::time::Duration,
    ) -> Result<Vec<(UnixMillis, StatsResult)>, CollectError> {
        let q = StatsQuery {
            target: target.clone(),
            window,
            at: start,
        };
        if start == end {
            return Ok(vec![(start, self.collect(&q).await?)]);
        }
        let backends: Vec<&Backend> = match namespace_of(target) {
            Some(ns) => self.route(ns).into_iter().collect(),
            None => self
                .0
                .iter()
                .filter(|b| b.mesh.kinds().contains(&target.kind()))
                .collect(),
        };
        let answers = futures::future::try_join_all(backends.into_iter().map(|b| {
            let q = &q;
            async move {
                adapters::engine::collect_range(
                    b.mesh.as_ref(),
                    b.exec.inner(),
                    q,
                    start,
                    end,
                    step,
                )
                .await
                .map(|points| (b, points))
            }
        }))
        .await?;
        let mut per_time: std::collections::BTreeMap<UnixMillis, Vec<ResourceStats>> =
            Default::default();
        let mut edges: std::collections::BTreeMap<UnixMillis, StatsResult> = Default::default();
        for (b, points) in answers {
            for (t, r) in points {
                match r {
                    StatsResult::Resources(items) => per_time.entry(t).or_default().extend(
                        items
                            .into_iter()
                            .filter(|i| self.owns(b, i.resource.home_namespace())),
                    ),
                    e @ StatsResult::Edges(_) => {
                        edges.insert(t, e);
                    }
                }
            }
        }
        if !edges.is_empty() {
            return Ok(edges.into_iter().collect());
        }
        Ok(per_time
            .into_iter()
            .map(|(t, mut items)| {
                items.sort_by(|a, b| a.resource.cmp(&b.resource));
                (t, StatsResult::Resources(items))
            })
            .collect())
    }
}

/// The namespace a question is about; `None` for cluster-wide lists.
fn namespace_of(target: &Target) -> Option<&str> {
    match target {
        Target::List { namespace, .. } => namespace.as_deref(),
        Target::One(r) | Target::Edges(r) => Some(r.home_namespace()),
    }
}

/// The answer for a namespace no backend serves: nothing listed, an object with zeros.
fn unserved(target: &Target) -> StatsResult {
    match target {
        Target::Edges(_) => StatsResult::Edges(Vec::new()),
        Target::One(r) => StatsResult::Resources(vec![ResourceStats {
            resource: r.clone(),
            stats: TrafficStats::default(),
        }]),
        Target::List { .. } => StatsResult::Resources(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str, mesh: MeshKind, namespaces: &[&str]) -> BackendConfig {
        let mut c = BackendConfig::new(mesh, "http://127.0.0.1:1".into());
        c.name = name.into();
        c.namespaces = namespaces.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn routing_prefers_listed_namespaces_then_the_catch_all() {
        let b = Backends::new(
            &[
                backend("a", MeshKind::Linkerd, &["shop"]),
                backend("b", MeshKind::Consul, &[]),
            ],
            Duration::from_secs(1),
            0,
        )
        .unwrap();
        assert_eq!(b.route("shop").unwrap().name, "a");
        assert_eq!(b.route("other").unwrap().name, "b");
        // union: Linkerd's workloads and Consul's services
        assert_eq!(b.kinds(), Kind::ALL);
        let q = |target| StatsQuery {
            target,
            window: Duration::from_secs(30),
            at: adapters::model::UnixMillis(0),
        };
        let svc = |ns: &str| Target::List {
            kind: Kind::Service,
            namespace: Some(ns.into()),
        };
        assert!(!b.supports(&q(svc("shop"))));
        assert!(b.supports(&q(svc("other"))));
    }

    #[test]
    fn bad_backend_sets_are_refused() {
        let twice = Backends::new(
            &[
                backend("a", MeshKind::Linkerd, &["shop"]),
                backend("b", MeshKind::Istio, &["shop"]),
            ],
            Duration::from_secs(1),
            0,
        );
        assert!(twice
            .err()
            .unwrap()
            .contains("\"shop\" is listed by backends"));
        let mut c = backend("l", MeshKind::Linkerd, &[]);
        c.consul_datacenter = Some("dc1".into());
        assert!(mesh_of(&c)
            .err()
            .unwrap()
            .contains("consulDatacenter applies to mesh consul only"));
        let mut c = backend("c", MeshKind::Consul, &[]);
        c.osm_stats = OsmStats::Envoy;
        assert!(mesh_of(&c).err().unwrap().contains("osmStats"));
        for m in [MeshKind::Istio, MeshKind::Cilium, MeshKind::Kuma] {
            let mut c = backend("w", m, &[]);
            c.workload_kinds.default = adapters::workloads::WorkloadKind::StatefulSet;
            assert!(mesh_of(&c).is_ok());
        }
    }

    #[test]
    fn mesh_options_parse_and_scrape_labels_default_per_mesh() {
        use clap::Parser;
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "backends:\n\
             - {{name: i, mesh: istio, namespaces: [a], prometheus: {{url: http://p}},\n   \
               workloadKinds: {{default: StatefulSet, rules: [{{kind: Job, name: \"r*\"}}]}}}}\n\
             - {{name: o, mesh: osm, namespaces: [b], prometheus: {{url: http://p}}, osmStats: envoy}}\n\
             - {{name: k, mesh: kuma, namespaces: [c], prometheus: {{url: http://p}}, kumaMesh: m,\n   \
               scrapeLabels: {{pod: kubernetes_pod_name}}}}\n\
             - {{name: c, mesh: consul, prometheus: {{url: http://p}}, consulDatacenter: dc2}}"
        )
        .unwrap();
        let flags = crate::config::Flags::try_parse_from([
            "mesh-metrics",
            "--config",
            f.path().to_str().unwrap(),
        ])
        .unwrap();
        let c = crate::config::Config::from_flags(flags).unwrap();
        let b = &c.backends;
        assert_eq!(b[0].workload_kinds.kind_of("x", "report"), Kind::Job);
        assert_eq!(b[0].workload_kinds.kind_of("x", "db"), Kind::StatefulSet);
        assert_eq!(b[1].osm_stats, OsmStats::Envoy);
        assert_eq!(b[1].scrape_labels.namespace, "source_namespace");
        assert_eq!(b[1].scrape_labels.pod, "source_pod_name");
        assert_eq!(b[2].kuma_mesh.as_deref(), Some("m"));
        assert_eq!(b[2].scrape_labels.namespace, "namespace");
        assert_eq!(b[2].scrape_labels.pod, "kubernetes_pod_name");
        assert_eq!(b[3].consul_datacenter.as_deref(), Some("dc2"));
        let names: Vec<&str> = Backends::new(b, Duration::from_secs(1), 0)
            .unwrap()
            .iter()
            .map(|b| b.mesh.name())
            .collect();
        assert_eq!(names, ["istio", "osm", "kuma", "consul"]);
        let flags = crate::config::Flags::try_parse_from([
            "mesh-metrics",
            "--mesh",
            "osm",
            "--prometheus-url",
            "http://p",
        ])
        .unwrap();
        let c = crate::config::Config::from_flags(flags).unwrap();
        assert_eq!(c.backends[0].scrape_labels, Osm::scrape_defaults());
    }

    #[tokio::test]
    async fn unserved_namespaces_answer_empty_or_zero() {
        let b = Backends::new(
            &[backend("a", MeshKind::Linkerd, &["shop"])],
            Duration::from_secs(1),
            0,
        )
        .unwrap();
        let r = adapters::model::ResourceRef::namespaced(Kind::Deployment, "other", "web");
        let one = b
            .collect(&StatsQuery {
                target: Target::One(r.clone()),
                window: Duration::from_secs(30),
                at: adapters::model::UnixMillis(0),
            })
            .await
            .unwrap();
        assert_eq!(
            one,
            StatsResult::Resources(vec![ResourceStats {
                resource: r,
                stats: TrafficStats::default()
            }])
        );
    }
}
