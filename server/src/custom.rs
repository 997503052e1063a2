//! Answers the custom metrics API (`custom.metrics.k8s.io`) from the same backends
//! as the SMI API: a named object is one SMI question; `*` with a label selector is
//! one list question filtered by the pods the watch-backed [`PodStore`] selects;
//! `metricLabelSelector` turns the question into the object's edges.

use std::sync::Arc;

use adapters::model::{
    Kind, ResourceRef, StatsQuery, StatsResult, Target, TrafficStats, UnixMillis,
};
use apiservice::custom_metrics::{
    self, edge_stats, CustomRequest, EdgeFilter, Metric, Objects, Value1, Version,
};
use apiservice::status::ApiError;

use crate::api::AppState;
use crate::pods::PodStore;

/// What the custom metrics API needs besides the backends.
pub struct CustomMetrics {
    /// The served versions (empty: the API is off).
    pub versions: Vec<Version>,
    /// Pod labels, for `pods/*` with a label selector (None without Kubernetes access).
    pub pods: Option<Arc<PodStore>>,
}

/// Answers a parsed request: the JSON body or a `Status`.
pub async fn answer(
    state: &AppState,
    custom: &CustomMetrics,
    req: CustomRequest,
) -> Result<Vec<u8>, ApiError> {
    let (version, objects, metric, edges) = match req {
        CustomRequest::Discovery(v) => {
            return Ok(serde_json::to_vec(&custom_metrics::discovery(v)).unwrap_or_default());
        }
        CustomRequest::Metric {
            version,
            objects,
            metric,
            edges,
        } => (version, objects, metric, edges),
    };
    let at = UnixMillis::now().align_down(state.evaluation_interval);
    let window = state.windows.default;
    let collect = |target: Target| {
        let q = StatsQuery { target, window, at };
        async move { state.backends.collect(&q).await.map_err(ApiError::from) }
    };
    let objects: Vec<ResourceRef> = match objects {
        Objects::One(r) => vec![r],
        Objects::Selected {
            kind,
            namespace,
            selector,
        } => {
            let names = if kind == Kind::Pod {
                let store = custom.pods.as_ref().ok_or_else(|| {
                    ApiError::unavailable("pod label selectors need Kubernetes API access (run in a cluster or pass --kubeconfig)")
                })?;
                Some(store.select(&namespace, &selector)?)
            } else if selector.0.is_empty() {
                None
            } else {
                return Err(ApiError::bad_request(format!(
                    "label selectors are supported for pods; for {} name the object",
                    kind.plural()
                )));
            };
            let listed = collect(Target::List {
                kind,
                namespace: Some(namespace.clone()),
            })
            .await?;
            let StatsResult::Resources(items) = listed else {
                return Err(ApiError::internal("a list answered with edges"));
            };
            let mut found: Vec<ResourceRef> = items.into_iter().map(|i| i.resource).collect();
            if let Some(names) = &names {
                // selected pods without traffic data still get a value (zero traffic)
                found.retain(|r| names.contains(&r.name));
                for n in names {
                    if !found.iter().any(|r| &r.name == n) {
                        found.push(ResourceRef::namespaced(kind, namespace.clone(), n.clone()));
                    }
                }
            }
            found
        }
    };
    let answers = futures::future::try_join_all(objects.into_iter().map(|object| {
        let edges = edges.clone();
        async move {
            let stats = stats_of(&collect, &object, edges.as_ref()).await?;
            Ok::<_, ApiError>((object, stats))
        }
    }))
    .await?;
    let secs = window.as_secs_f64();
    let values: Vec<Value1> = answers
        .into_iter()
        .filter_map(|(object, stats)| {
            metric
                .value(&stats, secs)
                .map(|value| Value1 { object, value })
        })
        .collect();
    if values.is_empty() && !matches!(metric, Metric::RequestsPerSecond) {
        return Err(ApiError::not_found(format!(
            "the server could not find the metric {} for the requested objects: no responses in the last {}",
            metric.name(),
            adapters::duration::format(window)
        )));
    }
    Ok(custom_metrics::render(
        version,
        metric,
        edges.as_ref(),
        &values,
        at,
        window.as_secs() as i64,
    ))
}

async fn stats_of<F, Fut>(
    collect: &F,
    object: &ResourceRef,
    edges: Option<&EdgeFilter>,
) -> Result<TrafficStats, ApiError>
where
    F: Fn(Target) -> Fut,
    Fut: std::future::Future<Output = Result<StatsResult, ApiError>>,
{
    match edges {
        None => match collect(Target::One(object.clone())).await? {
            StatsResult::Resources(items) => Ok(items.first().map(|i| i.stats).unwrap_or_default()),
            StatsResult::Edges(_) => Err(ApiError::internal("an object answered with edges")),
        },
        Some(filter) => match collect(Target::Edges(object.clone())).await? {
            StatsResult::Edges(items) => Ok(edge_stats(&items, filter)),
            StatsResult::Resources(_) => Err(ApiError::internal("edges answered with resources")),
        },
    }
}
