//! Runs a mesh's [`Plan`] concurrently through an [`Executor`] and folds the
//! vectors into the mesh-neutral [`StatsResult`]. Mesh-specific knowledge stays in
//! the plan (queries, how items are named, bucket units) and in [`Mesh::outcome`].
//!
//! Samples naming the same item are summed, whichever query or label set they came
//! from: several raw values may decode to one object (an Envoy-sanitised name, two
//! ports of one service).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::try_join_all;

use crate::histogram::{Buckets, SMI_QUANTILES};
use crate::mesh::{Family, Mesh, Outcome, Plan, PlanError};
use crate::model::{
    Direction, EdgeStats, Latency, ResourceRef, ResourceStats, StatsQuery, StatsResult, Target,
    TrafficStats, UnixMillis,
};
use crate::prometheus::{parse_value, Executor, PrometheusClient, QueryError, Sample, Vector};

/// Why a query could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectError {
    /// The mesh cannot answer this kind of question.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Prometheus failed.
    #[error(transparent)]
    Query(#[from] QueryError),
}

#[derive(Default)]
struct Acc {
    success: f64,
    failure: f64,
    buckets: Buckets,
}

impl Acc {
    fn stats(&self) -> TrafficStats {
        TrafficStats {
            success: self.success,
            failure: self.failure,
            latency: self
                .buckets
                .quantiles(SMI_QUANTILES)
                .map(|[p50, p90, p99]| Latency { p50, p90, p99 }),
        }
    }
}

/// Answers `q` with `mesh`'s queries, run concurrently on `exec`.
pub async fn collect(
    mesh: &dyn Mesh,
    exec: &dyn Executor,
    q: &StatsQuery,
) -> Result<StatsResult, CollectError> {
    let plan = mesh.plan(q)?;
    let answers =
        try_join_all(plan.queries.iter().map(|pq| exec.instant(&pq.promql, q.at))).await?;
    let vectors: Vec<&Vector> = answers.iter().map(|a| a.as_ref()).collect();
    Ok(fold(mesh, &q.target, &plan, &vectors))
}

/// Answers `q` at every `step` from `start` to `end` (inclusive) with one Prometheus
/// range query per planned query, run concurrently. `q.at` is ignored.
pub async fn collect_range(
    mesh: &dyn Mesh,
    client: &PrometheusClient,
    q: &StatsQuery,
    start: UnixMillis,
    end: UnixMillis,
    step: Duration,
) -> Result<Vec<(UnixMillis, StatsResult)>, CollectError> {
    let plan = mesh.plan(q)?;
    let matrices = try_join_all(
        plan.queries
            .iter()
            .map(|pq| client.query_range(&pq.promql, start, end, step)),
    )
    .await?;
    // regroup every matrix into one vector per evaluation time
    let step_ms = (step.as_millis() as i64).max(1);
    let times: Vec<i64> = (0..)
        .map(|i| start.0 + i * step_ms)
        .take_while(|t| *t <= end.0)
        .collect();
    let mut per_time: Vec<Vec<Vector>> =
        vec![vec![Vector::default(); plan.queries.len()]; times.len()];
    for (qi, matrix) in matrices.iter().enumerate() {
        for series in &matrix.0 {
            for &(t, value) in &series.1 {
                if let Ok(i) = times.binary_search(&t) {
                    per_time[i][qi].0.push(Sample {
                        labels: series.0.clone(),
                        value,
                    });
                }
            }
        }
    }
    Ok(times
        .iter()
        .zip(per_time)
        .map(|(t, vectors)| {
            let refs: Vec<&Vector> = vectors.iter().collect();
            (UnixMillis(*t), fold(mesh, &q.target, &plan, &refs))
        })
        .collect())
}

/// Folds one evaluation's answers (one vector per planned query) into the model.
/// Each distinct raw name of a query is resolved to its object once; samples then only
/// look their accumulator up by the borrowed label values.
fn fold(mesh: &dyn Mesh, target: &Target, plan: &Plan, answers: &[&Vector]) -> StatsResult {
    type Key = (Option<Direction>, ResourceRef);
    let mut slots: HashMap<(usize, &str, &str), Option<usize>> = HashMap::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut found: Vec<(Key, Acc)> = Vec::new();
    for (qi, (pq, vector)) in plan.queries.iter().zip(answers).enumerate() {
        for sample in &vector.0 {
            if sample.value.is_nan() {
                continue;
            }
            let Some((name, namespace)) = pq.item.raw(&sample.labels) else {
                continue;
            };
            let slot = *slots.entry((qi, name, namespace)).or_insert_with(|| {
                let item = pq.item.resolve(name, namespace)?;
                Some(
                    *index.entry((pq.direction, item)).or_insert_with_key(|key| {
                        found.push((key.clone(), Acc::default()));
                        found.len() - 1
                    }),
                )
            });
            let Some(slot) = slot else {
                continue;
            };
            let acc = &mut found[slot].1;
            let le = match pq.family {
                Family::Counts => None,
                Family::Buckets | Family::Combined => sample.labels.get("le"),
            };
            if let Some(le) = le {
                if let Some(le) = parse_value(le) {
                    acc.buckets.add(le * pq.le_scale, sample.value);
                }
            } else if pq.family != Family::Buckets {
                match mesh.outcome(&sample.labels) {
                    Outcome::Success => acc.success += sample.value,
                    Outcome::Failure => acc.failure += sample.value,
                }
            }
        }
    }
    let mut items = found.into_iter();

    match target {
        Target::Edges(root) => {
            let mut edges: Vec<EdgeStats> = items
                .filter_map(|((dir, peer), acc)| {
                    dir.map(|direction| EdgeStats {
                        resource: root.clone(),
                        direction,
                        peer,
                        stats: acc.stats(),
                    })
                })
                .collect();
            edges.sort_by(|a, b| (a.direction, &a.peer).cmp(&(b.direction, &b.peer)));
            StatsResult::Edges(edges)
        }
        Target::One(r) => {
            let stats = items
                .find(|((dir, item), _)| dir.is_none() && item == r)
                .map(|(_, acc)| acc.stats())
                .unwrap_or_default();
            StatsResult::Resources(vec![ResourceStats {
                resource: r.clone(),
                stats,
            }])
        }
        Target::List { .. } => {
            let mut list: Vec<ResourceStats> = items
                .map(|((_, resource), acc)| ResourceStats {
                    resource,
                    stats: acc.stats(),
                })
                .collect();
            list.sort_by(|a, b| a.resource.cmp(&b.resource));
            StatsResult::Resources(list)
        }
    }
}
