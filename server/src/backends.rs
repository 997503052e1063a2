//! Mesh backends (a mesh adapter + its cached Prometheus) and the routing of a
//! question to them: a namespace goes to the backend that lists it, else to the
//! catch-all backend; cluster-wide lists ask every backend and merge.

use std::sync::Arc;
use std::time::Duration;

use adapters::engine::{collect, CollectError};
use adapters::linkerd::Linkerd;
use adapters::mesh::Mesh;
use adapters::model::{Kind, StatsQuery, StatsResult, Target};
use adapters::prometheus::PrometheusClient;

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

impl Backends {
    /// Builds the backends; fails on an unusable Prometheus configuration.
    pub fn new(
        configs: &[BackendConfig],
        ttl: Duration,
        cache_max_bytes: u64,
    ) -> Result<Self, String> {
        let share = cache_max_bytes / configs.len().max(1) as u64;
        configs
            .iter()
            .map(|c| {
                let mesh: Arc<dyn Mesh> = match c.mesh {
                    MeshKind::Linkerd => Arc::new(Linkerd::new(c.scrape_labels.clone())),
                };
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

    /// The kinds every backend can describe (what discovery advertises).
    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.0.iter().all(|b| b.mesh.kinds().contains(k)))
            .collect()
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
        let namespace = match &q.target {
            Target::List { namespace, .. } => namespace.as_deref(),
            Target::One(r) | Target::Edges(r) => Some(r.home_namespace()),
        };
        if let Some(ns) = namespace {
            return match self.route(ns) {
                Some(b) => collect(b.mesh.as_ref(), &b.exec, q).await,
                None => Ok(match q.target {
                    Target::Edges(_) => StatsResult::Edges(Vec::new()),
                    _ => StatsResult::Resources(Vec::new()),
                }),
            };
        }
        let answers =
            futures::future::try_join_all(self.0.iter().map(|b| async move {
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
}
