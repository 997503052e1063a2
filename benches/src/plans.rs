//! The PromQL each side of a comparison issues for one question:
//!
//! * mesh-metrics' own plan, built by the server's Linkerd adapter (the floor is measured on
//!   exactly the queries the server sends);
//! * the plainest queries that carry the answer (one counts and one buckets query per
//!   direction, with the server's selectors), for scale: the server instead combines each
//!   pair into one query and splits list queries in two halves;
//! * the reference implementation's plan (smi-metrics, Linkerd provider): five resource
//!   queries or ten edge queries, `histogram_quantile` over `irate` for p50/p90/p99 and
//!   `increase` for success/failure, with unescaped regex matchers and `.+` for unset values,
//!   run one after another.

use std::time::Duration;

use adapters::linkerd::Linkerd;
use adapters::mesh::Mesh;
use adapters::model::{Kind, ResourceRef, StatsQuery, Target, UnixMillis};
use anyhow::{anyhow, Result};
use apiservice::request::{self, ApiRequest, WindowLimits};

/// The questions the benchmark times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// `/namespaces`: every namespace (all inbound series of the mesh).
    NamespaceList,
    /// `/namespaces/{ns}/deployments/{name}/edges`.
    Edges {
        /// The deployment's namespace.
        namespace: String,
        /// The deployment.
        name: String,
    },
}

impl Question {
    /// The API path (no query string).
    pub fn path(&self) -> String {
        match self {
            Question::NamespaceList => format!("{}/namespaces", apiservice::BASE_PATH),
            Question::Edges { namespace, name } => format!(
                "{}/namespaces/{namespace}/deployments/{name}/edges",
                apiservice::BASE_PATH
            ),
        }
    }

    /// A short label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Question::NamespaceList => "namespace list",
            Question::Edges { .. } => "deployment edges",
        }
    }

    fn target(&self) -> Target {
        match self {
            Question::NamespaceList => Target::List {
                kind: Kind::Namespace,
                namespace: None,
            },
            Question::Edges { namespace, name } => {
                Target::Edges(ResourceRef::namespaced(Kind::Deployment, namespace, name))
            }
        }
    }

    /// mesh-metrics' queries for this question (default Linkerd scrape labels).
    pub fn ours(&self, window: Duration) -> Vec<String> {
        plan(&self.target(), window)
    }

    /// The plainest queries carrying the answer: a counts and a buckets query per
    /// direction, with the selectors of mesh-metrics' plan.
    pub fn plain(&self, window: Duration) -> Vec<String> {
        let w = format!("{}s", window.as_secs());
        let pair = |sel: &str, by: &str| {
            vec![
                format!("sum by ({by}, classification) (increase(response_total{{{sel}}}[{w}]))"),
                format!("sum by (le, {by}) (increase(response_latency_ms_bucket{{{sel}}}[{w}]))"),
            ]
        };
        match self {
            Question::NamespaceList => pair(r#"direction="inbound""#, "namespace"),
            Question::Edges { namespace, name } => {
                let mut all = pair(
                    &format!(
                        r#"direction="outbound", deployment="{name}", namespace="{namespace}""#
                    ),
                    "dst_namespace, dst_deployment",
                );
                all.extend(pair(
                    &format!(
                        r#"direction="outbound", dst_deployment="{name}", dst_namespace="{namespace}""#
                    ),
                    "namespace, deployment",
                ));
                all
            }
        }
    }

    /// The reference implementation's queries, in the order it runs them.
    pub fn reference(&self, window: Duration) -> Vec<String> {
        let w = format!("{}s", window.as_secs());
        let latency = |q: &str, sel: &str, by: &str| {
            format!(
                "histogram_quantile({q}, sum by ({by}) (irate(response_latency_ms_bucket{{{sel}}}[{w}])))"
            )
        };
        let count = |class: &str, sel: &str, by: &str| {
            format!(
                r#"sum by ({by}) (increase(response_total{{classification="{class}", {sel}}}[{w}]))"#
            )
        };
        let five = |sel: &str, by: &str| {
            let with_le = format!("{by}, le");
            vec![
                latency("0.99", sel, &with_le),
                latency("0.9", sel, &with_le),
                latency("0.5", sel, &with_le),
                count("success", sel, by),
                count("failure", sel, by),
            ]
        };
        match self {
            // resource lookup of kind Namespace: the kind label is `namespace` itself
            Question::NamespaceList => five(
                r#"namespace=~".+", namespace=~".+", direction="inbound""#,
                "namespace, namespace",
            ),
            Question::Edges { namespace, name } => {
                let by = "deployment, dst_deployment, namespace, dst_namespace";
                // pass 1 pins the destination (traffic into the resource), pass 2 the source
                let into = format!(
                    r#"namespace=~".+", dst_namespace=~"{namespace}", deployment=~".+", dst_deployment=~"{name}""#
                );
                let out = format!(
                    r#"namespace=~"{namespace}", dst_namespace=~".+", deployment=~"{name}", dst_deployment=~".+""#
                );
                let mut all = five(&into, by);
                all.extend(five(&out, by));
                all
            }
        }
    }
}

/// The PromQL the server's Linkerd adapter issues for `target`.
fn plan(target: &Target, window: Duration) -> Vec<String> {
    Linkerd::default()
        .plan(&StatsQuery {
            target: target.clone(),
            window,
            at: UnixMillis(0),
        })
        .map(|p| p.queries.into_iter().map(|q| q.promql).collect())
        .unwrap_or_default()
}

/// The distinct PromQL queries the server issues for a set of request paths (with query
/// strings), parsed the way the server parses them with `default_window` as `--default-window`.
pub fn distinct_queries(paths: &[String], default_window: Duration) -> Result<Vec<String>> {
    let limits = WindowLimits {
        default: default_window,
        ..WindowLimits::default()
    };
    let mut all = std::collections::BTreeSet::new();
    for p in paths {
        let (path, query) = match p.split_once('?') {
            Some((a, b)) => (a, Some(b)),
            None => (p.as_str(), None),
        };
        match request::parse(path, query, &limits).map_err(|e| anyhow!("{p}: {}", e.message))? {
            ApiRequest::Metrics(m) => {
                for t in &m.targets {
                    all.extend(plan(t, m.window));
                }
            }
            _ => return Err(anyhow!("{p} is not a metrics path")),
        }
    }
    Ok(all.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_have_the_documented_sizes() {
        let w = Duration::from_secs(1800);
        let ns = Question::NamespaceList;
        assert_eq!(ns.ours(w).len(), 2);
        assert_eq!(ns.plain(w).len(), 2);
        assert!(ns.plain(w)[1].starts_with("sum by (le, namespace) (increase(response_latency_ms_bucket{direction=\"inbound\"}[1800s]"));
        assert_eq!(ns.reference(w).len(), 5);
        let e = Question::Edges {
            namespace: "scale-0000".into(),
            name: "app-00000".into(),
        };
        assert_eq!(e.ours(w).len(), 2);
        assert_eq!(e.plain(w).len(), 4);
        assert!(e.plain(w)[3].contains(
            "{direction=\"outbound\", dst_deployment=\"app-00000\", dst_namespace=\"scale-0000\"}"
        ));
        let r = e.reference(w);
        assert_eq!(r.len(), 10);
        assert!(r[0].starts_with("histogram_quantile(0.99, sum by (deployment, dst_deployment, namespace, dst_namespace, le) (irate(response_latency_ms_bucket{"));
        assert!(r[0].contains(r#"dst_deployment=~"app-00000""#) && r[0].ends_with("[1800s])))"));
        assert!(r[9].contains(r#"classification="failure", namespace=~"scale-0000""#));
        assert_eq!(
            e.path(),
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/scale-0000/deployments/app-00000/edges"
        );
    }

    #[test]
    fn distinct_queries_merge_overlapping_questions() {
        let b = apiservice::BASE_PATH;
        let paths = vec![
            format!("{b}/namespaces/a/deployments"),
            format!("{b}/namespaces/a/deployments?t=30m"),
            format!("{b}/namespaces/a/trafficmetrics"),
        ];
        // the trafficmetrics list asks four kinds, one of them the deployments list; each
        // list is two queries (its halves)
        let q = distinct_queries(&paths, Duration::from_secs(1800)).unwrap();
        assert_eq!(q.len(), 8);
    }
}
