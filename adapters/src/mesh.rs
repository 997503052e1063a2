//! What a mesh adapter provides: for a [`StatsQuery`], a [`Plan`] of PromQL queries
//! (one per metric family and direction, never one per item) and how to read the
//! answers (which labels name the object, which samples are failures).
//! The mesh-neutral [`crate::engine`] runs a plan and folds the answers.

use serde::Deserialize;

use crate::model::{Direction, Kind, ResourceRef, StatsQuery};
use crate::prometheus::Labels;

/// The two metric families every mesh provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Response counters, summed over the window (`increase`), grouped by the
    /// item labels plus whatever the mesh needs to classify success.
    Counts,
    /// Latency histogram buckets summed over the window, grouped by `le` plus the
    /// item labels.
    Buckets,
}

/// How to read an object reference from a sample's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLabels {
    /// The kind of the object named by the labels.
    pub kind: Kind,
    /// The label holding the namespace (unused for [`Kind::Namespace`]).
    pub namespace: String,
    /// The label holding the name (for a namespace: its name).
    pub name: String,
}

impl RefLabels {
    /// Reads the reference; `None` when a needed label is missing or empty.
    pub fn read(&self, labels: &Labels) -> Option<ResourceRef> {
        let name = labels.get(&self.name).filter(|v| !v.is_empty())?;
        if self.kind == Kind::Namespace {
            return Some(ResourceRef::namespace(name));
        }
        let ns = labels.get(&self.namespace).filter(|v| !v.is_empty())?;
        Some(ResourceRef::namespaced(self.kind, ns, name))
    }
}

/// One PromQL query of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedQuery {
    /// The PromQL text (all label values escaped).
    pub promql: String,
    /// Which family it measures.
    pub family: Family,
    /// For edge queries, the direction its samples describe; `None` for resource queries.
    pub direction: Option<Direction>,
    /// How to read the item (resource, or the peer for edges) from each sample.
    pub item: RefLabels,
}

/// The queries that answer one [`StatsQuery`]. They are independent and run concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The queries.
    pub queries: Vec<PlannedQuery>,
}

/// The SMI outcome of a counted response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted in `success_count`.
    Success,
    /// Counted in `failure_count`.
    Failure,
}

/// Why a mesh cannot answer a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The mesh's data cannot describe this kind.
    #[error("the {mesh} adapter cannot report {kind}: its metrics carry no such label")]
    UnsupportedKind {
        /// The mesh's name.
        mesh: &'static str,
        /// The kind asked for.
        kind: Kind,
    },
}

/// Names of labels added by the Prometheus scrape configuration (they differ per
/// install: `namespace`/`pod` or `kubernetes_namespace`/`kubernetes_pod_name`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ScrapeLabels {
    /// The label holding the scraped pod's namespace.
    pub namespace: String,
    /// The label holding the scraped pod's name.
    pub pod: String,
}

impl Default for ScrapeLabels {
    fn default() -> Self {
        ScrapeLabels {
            namespace: "namespace".into(),
            pod: "pod".into(),
        }
    }
}

/// A service mesh adapter: turns model queries into PromQL and classifies answers.
pub trait Mesh: Send + Sync + std::fmt::Debug {
    /// Short name, as in `--mesh`.
    fn name(&self) -> &'static str;
    /// The kinds this mesh's data can describe.
    fn kinds(&self) -> &'static [Kind];
    /// The queries answering `q`.
    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError>;
    /// Classifies a sample of a [`Family::Counts`] query.
    fn outcome(&self, labels: &Labels) -> Outcome;
}
