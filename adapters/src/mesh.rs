//! What a mesh adapter provides: for a [`StatsQuery`], a [`Plan`] of PromQL queries
//! (one per metric family and direction, never one per item) and how to read the
//! answers (which labels name the object, which samples are failures).
//! The mesh-neutral [`crate::engine`] runs a plan and folds the answers.
//!
//! The SMI success rule every adapter applies (as far as its data can express it):
//! a response **fails** when its HTTP status is 5xx, when no response came back (a
//! reset, Istio's `response_code="0"`), or when its gRPC status is 2 (Unknown),
//! 4 (DeadlineExceeded), 13 (Internal), 14 (Unavailable) or 15 (DataLoss); every other
//! response (4xx and other gRPC statuses included) succeeds. [`failing_http`] and
//! [`failing_grpc`] encode it.

use std::sync::Arc;

use serde::Deserialize;

use crate::codec::Codec;
use crate::model::{Direction, Kind, ResourceRef, StatsQuery};
use crate::prometheus::Labels;
use crate::promql::{sum_by, Selector};
use crate::workloads::WorkloadKinds;

/// The two metric families every mesh provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Response counters, summed over the window (`increase`), grouped by the
    /// item labels plus whatever the mesh needs to classify success.
    Counts,
    /// Latency histogram buckets summed over the window, grouped by `le` plus the
    /// item labels.
    Buckets,
    /// Both in one query (one selector over the counter's and the histogram's names, for
    /// meshes whose counters carry no `le` and whose buckets carry no outcome labels):
    /// samples with an `le` label are buckets, the others counts. Half the queries, and
    /// Prometheus looks the series up once.
    Combined,
}

/// How to read an object reference from a sample's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLabels {
    /// The kind of the object named by the labels.
    pub kind: Kind,
    /// The label holding the namespace (unused for [`Kind::Namespace`]; the same as
    /// `name` when the codec combines both).
    pub namespace: String,
    /// The label holding the name (for a namespace: its name).
    pub name: String,
    /// How names are written in the values.
    pub codec: Codec,
    /// For kind-less workload names: only names resolving to `kind` are read.
    pub kinds: Option<Arc<WorkloadKinds>>,
}

impl RefLabels {
    /// Plain labels: the namespace in `namespace`, the name in `name`.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        RefLabels {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            codec: Codec::Plain,
            kinds: None,
        }
    }

    /// The same labels with values written by `codec`.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The same labels, naming workloads without a kind: `kinds` decides each name's kind.
    pub fn with_kinds(mut self, kinds: Arc<WorkloadKinds>) -> Self {
        self.kinds = Some(kinds);
        self
    }

    /// Reads the reference; `None` when a needed label is missing, empty or not in the
    /// codec's form, or names a workload of another kind.
    pub fn read(&self, labels: &Labels) -> Option<ResourceRef> {
        let (name, namespace) = self.raw(labels)?;
        self.resolve(name, namespace)
    }

    /// The raw values naming the object: the name label's, and the namespace label's
    /// (empty for a namespace). `None` when a needed one is missing or empty.
    /// [`RefLabels::resolve`] turns them into a reference; samples with equal raw values
    /// name the same object, so a fold resolves each pair once.
    pub fn raw<'l>(&self, labels: &'l Labels) -> Option<(&'l str, &'l str)> {
        let value = labels.get(&self.name).filter(|v| !v.is_empty())?;
        if self.kind == Kind::Namespace {
            return Some((value, ""));
        }
        let ns = labels.get(&self.namespace).filter(|v| !v.is_empty())?;
        Some((value, ns))
    }

    /// The reference named by raw values from [`RefLabels::raw`]; `None` when they are not
    /// in the codec's form or name a workload of another kind.
    pub fn resolve(&self, name: &str, namespace: &str) -> Option<ResourceRef> {
        if self.kind == Kind::Namespace {
            return Some(ResourceRef::namespace(self.codec.decode_namespace(name)?));
        }
        let name = self.codec.decode_name(name)?;
        let ns = self.codec.decode_namespace(namespace)?;
        if let Some(kinds) = &self.kinds {
            if kinds.kind_of(&ns, &name) != self.kind {
                return None;
            }
        }
        Some(ResourceRef::namespaced(self.kind, ns, name))
    }

    /// The labels that identify one item (for `sum by`).
    pub fn group_by(&self) -> Vec<&str> {
        if self.kind == Kind::Namespace || self.codec.combined() {
            vec![self.name.as_str()]
        } else {
            vec![self.namespace.as_str(), self.name.as_str()]
        }
    }

    /// Adds matchers selecting series that name `r`.
    pub fn pin(&self, sel: Selector, r: &ResourceRef) -> Selector {
        let (ns, name) = match r.kind {
            Kind::Namespace => (Some(r.name.as_str()), None),
            _ => (r.namespace.as_deref(), Some(r.name.as_str())),
        };
        if self.codec.combined() {
            let (op, value) = self.codec.encode(ns, name);
            return sel.with(&self.name, op, &value);
        }
        if self.kind == Kind::Namespace {
            let (op, value) = self.codec.encode(None, ns);
            return sel.with(&self.name, op, &value);
        }
        let (op, value) = self.codec.encode(None, name);
        let sel = sel.with(&self.name, op, &value);
        match ns {
            Some(ns) => {
                let (op, value) = self.codec.encode(None, Some(ns));
                sel.with(&self.namespace, op, &value)
            }
            None => sel,
        }
    }

    /// Adds matchers selecting the series of items in `namespace` (all when `None`),
    /// requiring the identifying labels to be present.
    pub fn within(&self, sel: Selector, namespace: Option<&str>) -> Selector {
        match namespace {
            Some(ns) if self.codec.combined() => {
                let (op, value) = self.codec.encode(Some(ns), None);
                sel.with(&self.name, op, &value)
            }
            Some(ns) if self.kind == Kind::Namespace => self.pin(sel, &ResourceRef::namespace(ns)),
            Some(ns) => {
                let (op, value) = self.codec.encode(None, Some(ns));
                sel.present(&self.name).with(&self.namespace, op, &value)
            }
            None => sel.present(&self.name),
        }
    }
}

/// One PromQL query of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    /// The PromQL text (all label values escaped).
    pub promql: String,
    /// Which family it measures.
    pub family: Family,
    /// For edge queries, the direction its samples describe; `None` for resource queries.
    pub direction: Option<Direction>,
    /// How to read the item (resource, or the peer for edges) from each sample.
    pub item: RefLabels,
    /// Factor turning `le` bounds into milliseconds (1000 for histograms in seconds).
    pub le_scale: f64,
}

impl PlannedQuery {
    /// A [`Family::Counts`] query: `sum by (item labels, outcome labels) (increases)`,
    /// where `increases` is an instant-vector expression of counter increases.
    pub fn counts(
        item: RefLabels,
        direction: Option<Direction>,
        increases: &str,
        outcome_by: &[&str],
    ) -> Self {
        let by = [&item.group_by()[..], outcome_by].concat();
        PlannedQuery {
            promql: sum_by(&by, increases),
            family: Family::Counts,
            direction,
            item,
            le_scale: 1.0,
        }
    }

    /// A [`Family::Buckets`] query: `sum by (le, item labels) (increases)` over a
    /// histogram's `_bucket` series, whose bounds times `le_scale` are milliseconds.
    pub fn buckets(
        item: RefLabels,
        direction: Option<Direction>,
        increases: &str,
        le_scale: f64,
    ) -> Self {
        let by = [&["le"][..], &item.group_by()[..]].concat();
        PlannedQuery {
            promql: sum_by(&by, increases),
            family: Family::Buckets,
            direction,
            item,
            le_scale,
        }
    }

    /// A [`Family::Combined`] query: `sum by (le, item labels, outcome labels) (increases)`,
    /// where `increases` covers both the counter and the histogram's `_bucket` series.
    pub fn combined(
        item: RefLabels,
        direction: Option<Direction>,
        increases: &str,
        outcome_by: &[&str],
        le_scale: f64,
    ) -> Self {
        let by = [&["le"][..], &item.group_by()[..], outcome_by].concat();
        PlannedQuery {
            promql: sum_by(&by, increases),
            family: Family::Combined,
            direction,
            item,
            le_scale,
        }
    }
}

/// The queries that answer one [`StatsQuery`]. They are independent and run concurrently.
#[derive(Debug, Clone, PartialEq, Default)]
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

impl Outcome {
    /// `Failure` when `failed`, else `Success`.
    pub fn failure_if(failed: bool) -> Outcome {
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// Whether an HTTP status fails under the SMI rule: 5xx, or `0` (no response).
pub fn failing_http(status: &str) -> bool {
    status == "0" || (status.len() == 3 && status.starts_with('5'))
}

/// Whether a gRPC status fails under the SMI rule: 2, 4, 13, 14 or 15.
pub fn failing_grpc(status: &str) -> bool {
    matches!(status, "2" | "4" | "13" | "14" | "15")
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
    /// The mesh's data names this kind but not the peers of its traffic.
    #[error("the {mesh} adapter cannot report edges of {kind}: {why}")]
    UnsupportedEdges {
        /// The mesh's name.
        mesh: &'static str,
        /// The kind asked for.
        kind: Kind,
        /// What the data lacks.
        why: &'static str,
    },
}

/// Names of labels added by the Prometheus scrape configuration (they differ per
/// install: `namespace`/`pod` or `kubernetes_namespace`/`kubernetes_pod_name`). An
/// empty name means "the mesh's default" (see [`ScrapeLabels::or`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrapeLabels {
    /// The label holding the scraped pod's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The label holding the scraped pod's name.
    #[serde(default)]
    pub pod: String,
}

impl Default for ScrapeLabels {
    /// `namespace` and `pod`, as most scrape configurations write them.
    fn default() -> Self {
        ScrapeLabels {
            namespace: "namespace".into(),
            pod: "pod".into(),
        }
    }
}

impl ScrapeLabels {
    /// Both names unset (each falls back to a mesh default).
    pub fn unset() -> Self {
        ScrapeLabels {
            namespace: String::new(),
            pod: String::new(),
        }
    }

    /// These names, with unset ones taken from `defaults`.
    pub fn or(self, defaults: &ScrapeLabels) -> ScrapeLabels {
        let pick = |v: String, d: &str| if v.is_empty() { d.to_string() } else { v };
        ScrapeLabels {
            namespace: pick(self.namespace, &defaults.namespace),
            pod: pick(self.pod, &defaults.pod),
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

/// The [`PlanError::UnsupportedKind`] error unless `mesh` lists `kind`.
pub fn check_kind(mesh: &dyn Mesh, kind: Kind) -> Result<(), PlanError> {
    if mesh.kinds().contains(&kind) {
        Ok(())
    } else {
        Err(PlanError::UnsupportedKind {
            mesh: mesh.name(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::{WorkloadKind, WorkloadRule};

    #[test]
    fn success_rule() {
        for s in ["500", "503", "504", "599", "0"] {
            assert!(failing_http(s), "{s}");
        }
        for s in ["200", "201", "301", "404", "429", "5", "50"] {
            assert!(!failing_http(s), "{s}");
        }
        for s in ["2", "4", "13", "14", "15"] {
            assert!(failing_grpc(s), "{s}");
        }
        for s in ["0", "1", "3", "5", "7", "16", ""] {
            assert!(!failing_grpc(s), "{s}");
        }
    }

    #[test]
    fn reads_and_pins_plain_labels() {
        let r = RefLabels::new(Kind::Deployment, "ns", "wl");
        let l = Labels::from_pairs([("ns", "shop"), ("wl", "api")]);
        assert_eq!(
            r.read(&l),
            Some(ResourceRef::namespaced(Kind::Deployment, "shop", "api"))
        );
        assert_eq!(r.read(&Labels::from_pairs([("ns", "shop")])), None);
        let sel = r.pin(
            Selector::new("m"),
            &ResourceRef::namespaced(Kind::Deployment, "shop", "api"),
        );
        assert_eq!(sel.render(), r#"m{wl="api", ns="shop"}"#);
        assert_eq!(r.group_by(), ["ns", "wl"]);
        assert_eq!(
            r.within(Selector::new("m"), Some("shop")).render(),
            r#"m{wl!="", ns="shop"}"#
        );
    }

    #[test]
    fn workload_kinds_filter_reads() {
        let kinds = Arc::new(WorkloadKinds {
            default: WorkloadKind::Deployment,
            rules: vec![WorkloadRule {
                kind: WorkloadKind::StatefulSet,
                namespace: None,
                name: "db".into(),
            }],
        });
        let deploy = RefLabels::new(Kind::Deployment, "ns", "wl").with_kinds(kinds.clone());
        let sts = RefLabels::new(Kind::StatefulSet, "ns", "wl").with_kinds(kinds);
        let db = Labels::from_pairs([("ns", "shop"), ("wl", "db")]);
        assert_eq!(deploy.read(&db), None);
        assert_eq!(
            sts.read(&db),
            Some(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db"))
        );
    }

    #[test]
    fn combined_codec_reads_namespace_and_name_from_one_label() {
        let codec = Codec::Template("{name}_{namespace}_svc_{number}");
        let svc = RefLabels::new(Kind::Service, "svc", "svc").with_codec(codec);
        let ns = RefLabels::new(Kind::Namespace, "", "svc").with_codec(codec);
        let l = Labels::from_pairs([("svc", "store-v1_shop_svc_8080")]);
        assert_eq!(
            svc.read(&l),
            Some(ResourceRef::namespaced(Kind::Service, "shop", "store-v1"))
        );
        assert_eq!(ns.read(&l), Some(ResourceRef::namespace("shop")));
        assert_eq!(svc.group_by(), ["svc"]);
        assert_eq!(
            svc.pin(
                Selector::new("m"),
                &ResourceRef::namespaced(Kind::Service, "shop", "api")
            )
            .render(),
            r#"m{svc=~"api_shop_svc_[0-9]+"}"#
        );
        assert_eq!(
            ns.pin(Selector::new("m"), &ResourceRef::namespace("shop"))
                .render(),
            r#"m{svc=~".+_shop_svc_[0-9]+"}"#
        );
        assert_eq!(
            svc.within(Selector::new("m"), Some("shop")).render(),
            r#"m{svc=~".+_shop_svc_[0-9]+"}"#
        );
    }

    #[test]
    fn sanitized_codec_pins_and_reads_back() {
        let r = RefLabels::new(Kind::Deployment, "ns", "wl").with_codec(Codec::Sanitized);
        let sel = r.pin(
            Selector::new("m"),
            &ResourceRef::namespaced(Kind::Deployment, "my-ns", "store-v1"),
        );
        assert_eq!(sel.render(), r#"m{wl="store_v1", ns="my_ns"}"#);
        let l = Labels::from_pairs([("ns", "my_ns"), ("wl", "store_v1")]);
        assert_eq!(
            r.read(&l),
            Some(ResourceRef::namespaced(
                Kind::Deployment,
                "my-ns",
                "store-v1"
            ))
        );
    }

    #[test]
    fn scrape_labels_fall_back_per_field() {
        let d = ScrapeLabels {
            namespace: "source_namespace".into(),
            pod: "source_pod_name".into(),
        };
        let s = ScrapeLabels {
            namespace: "kubernetes_namespace".into(),
            pod: String::new(),
        };
        assert_eq!(
            s.or(&d),
            ScrapeLabels {
                namespace: "kubernetes_namespace".into(),
                pod: "source_pod_name".into()
            }
        );
        assert_eq!(ScrapeLabels::unset().or(&d), d);
    }
}
