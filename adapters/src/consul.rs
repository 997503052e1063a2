//! Consul service mesh (Connect): Envoy statistics with Consul's stats tags.
//!
//! * Resources are Consul services (SMI kind `Service`; consul-k8s registers a pod under
//!   the Kubernetes Service that selects it), pods and namespaces (the last two from the
//!   scrape labels). They are server side: the inbound listener's
//!   `envoy_http_downstream_rq_xx` / `envoy_http_downstream_rq_time` with
//!   `envoy_http_conn_manager_prefix` `public_listener` (older releases:
//!   `public_listener_http`), where `consul_source_service` is the serving proxy's service.
//! * Edges are client side: the callers' upstream cluster statistics
//!   `envoy_cluster_upstream_rq_xx` / `envoy_cluster_upstream_rq_time`, where
//!   `consul_source_service` is the caller and `consul_destination_service` the callee.
//!   Server-side statistics do not name the caller, so both edge directions come from
//!   the callers (both ends must be in the mesh).
//! * A destination's Kubernetes namespace is on no client-side series
//!   (`consul_destination_namespace` is the Consul namespace, `default` without
//!   Enterprise namespaces); it is joined in from the service's own server-side series
//!   (`group_left`). A Consul service name is assumed to live in one Kubernetes namespace.
//! * Pods have no edges: the remote end is named by service only.
//! * Success: `envoy_response_code_class="5"` fails. Envoy answers a reset or an
//!   unreachable upstream with 503, so those count as failures; gRPC failures hide behind
//!   HTTP 200 and count as successes.

use crate::mesh::{
    check_kind, Mesh, Outcome, Plan, PlanError, PlannedQuery, RefLabels, ScrapeLabels,
};
use crate::model::{Direction, Kind, ResourceRef, StatsQuery, Target};
use crate::prometheus::Labels;
use crate::promql::{increase, Selector};

const SERVER_COUNTS: &str = "envoy_http_downstream_rq_xx";
const SERVER_BUCKETS: &str = "envoy_http_downstream_rq_time_bucket";
const CLIENT_COUNTS: &str = "envoy_cluster_upstream_rq_xx";
const CLIENT_BUCKETS: &str = "envoy_cluster_upstream_rq_time_bucket";
const PUBLIC_LISTENER: &str = "public_listener(_http)?";
const CLASS: &str = "envoy_response_code_class";
const SERVICE: &str = "consul_source_service";
const DESTINATION: &str = "consul_destination_service";
/// Label the join adds: the destination service's Kubernetes namespace.
const DESTINATION_NAMESPACE: &str = "destination_kubernetes_namespace";

const KINDS: [Kind; 3] = [Kind::Namespace, Kind::Pod, Kind::Service];

/// The Consul adapter.
#[derive(Debug, Clone, Default)]
pub struct Consul {
    scrape: ScrapeLabels,
    datacenter: Option<String>,
}

impl Consul {
    /// An adapter reading these scrape labels, restricted to one datacenter if given.
    pub fn new(scrape: ScrapeLabels, datacenter: Option<String>) -> Self {
        Consul { scrape, datacenter }
    }

    /// Server-side series (the inbound listener), in the configured datacenter.
    fn server(&self) -> Selector {
        let sel =
            Selector::new(SERVER_COUNTS).re("envoy_http_conn_manager_prefix", PUBLIC_LISTENER);
        match &self.datacenter {
            Some(dc) => sel.eq("consul_source_datacenter", dc),
            None => sel,
        }
    }

    /// Client-side series towards mesh services.
    fn client(&self) -> Selector {
        let sel = Selector::new(CLIENT_COUNTS).present(DESTINATION);
        match &self.datacenter {
            Some(dc) => sel
                .eq("consul_source_datacenter", dc)
                .eq("consul_destination_datacenter", dc),
            None => sel,
        }
    }

    /// The item of a resource query: what the scraped (serving) proxy is.
    fn own(&self, kind: Kind) -> RefLabels {
        match kind {
            Kind::Namespace => RefLabels::new(kind, "", &self.scrape.namespace),
            Kind::Pod => RefLabels::new(kind, &self.scrape.namespace, &self.scrape.pod),
            _ => RefLabels::new(kind, &self.scrape.namespace, SERVICE),
        }
    }

    /// The destination of a client-side series (after the namespace join).
    fn destination(kind: Kind) -> RefLabels {
        match kind {
            Kind::Namespace => RefLabels::new(kind, "", DESTINATION_NAMESPACE),
            _ => RefLabels::new(kind, DESTINATION_NAMESPACE, DESTINATION),
        }
    }

    /// One series per mesh service, `consul_destination_service` and its Kubernetes
    /// namespace, from the services' own inbound series (those in `namespace` only, if given).
    fn services(&self, namespace: Option<&str>) -> String {
        let mut sel = self.server();
        if let Some(ns) = namespace {
            sel = sel.eq(&self.scrape.namespace, ns);
        }
        format!(
            r#"topk by ({DESTINATION}) (1, group by ({DESTINATION}, {DESTINATION_NAMESPACE}) (label_replace(label_replace({}, "{DESTINATION}", "$1", "{SERVICE}", "(.+)"), "{DESTINATION_NAMESPACE}", "$1", "{}", "(.+)")))"#,
            sel.render(),
            crate::promql::escape(&self.scrape.namespace)
        )
    }

    fn pair(
        item: RefLabels,
        direction: Option<Direction>,
        [counts, buckets]: [&str; 2],
        expr: impl Fn(&str) -> String,
    ) -> [PlannedQuery; 2] {
        [
            PlannedQuery::counts(item.clone(), direction, &expr(counts), &[CLASS]),
            PlannedQuery::buckets(item, direction, &expr(buckets), 1.0),
        ]
    }

    /// `to` edges: the resource's calls, with each callee's namespace joined in.
    fn to(&self, q: &StatsQuery, r: &ResourceRef) -> [PlannedQuery; 2] {
        let sel = self.own(r.kind).pin(self.client(), r);
        let services = self.services(None);
        Self::pair(
            Self::destination(r.kind),
            Some(Direction::To),
            [CLIENT_COUNTS, CLIENT_BUCKETS],
            |m| {
                format!(
                    "{} * on ({DESTINATION}) group_left ({DESTINATION_NAMESPACE}) {services}",
                    increase(&[m], &sel, q.window)
                )
            },
        )
    }

    /// `from` edges: calls into the resource, measured by the callers.
    fn from(&self, q: &StatsQuery, r: &ResourceRef) -> [PlannedQuery; 2] {
        let sel = match r.kind {
            Kind::Namespace => self.client(),
            _ => self.client().eq(DESTINATION, &r.name),
        };
        let services = self.services(Some(r.home_namespace()));
        Self::pair(
            self.own(r.kind),
            Some(Direction::From),
            [CLIENT_COUNTS, CLIENT_BUCKETS],
            |m| {
                format!(
                    "{} and on ({DESTINATION}) {services}",
                    increase(&[m], &sel, q.window)
                )
            },
        )
    }
}

impl Mesh for Consul {
    fn name(&self) -> &'static str {
        "consul"
    }

    fn kinds(&self) -> &'static [Kind] {
        &KINDS
    }

    fn plan(&self, q: &StatsQuery) -> Result<Plan, PlanError> {
        let kind = q.target.kind();
        check_kind(self, kind)?;
        let server = [SERVER_COUNTS, SERVER_BUCKETS];
        let mut queries = Vec::with_capacity(4);
        match &q.target {
            Target::List { namespace, .. } => {
                let item = self.own(kind);
                let sel = item.within(self.server(), namespace.as_deref());
                queries.extend(Self::pair(item, None, server, |m| {
                    increase(&[m], &sel, q.window)
                }));
            }
            Target::One(r) => {
                let item = self.own(kind);
                let sel = item.pin(self.server(), r);
                queries.extend(Self::pair(item, None, server, |m| {
                    increase(&[m], &sel, q.window)
                }));
            }
            Target::Edges(_) if kind == Kind::Pod => {
                return Err(PlanError::UnsupportedEdges {
                    mesh: self.name(),
                    kind,
                    why: "Consul names the remote end of a request by service, never by pod",
                })
            }
            Target::Edges(r) => {
                queries.extend(self.to(q, r));
                queries.extend(self.from(q, r));
            }
        }
        Ok(Plan { queries })
    }

    fn outcome(&self, labels: &Labels) -> Outcome {
        Outcome::failure_if(labels.get(CLASS) == Some("5"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UnixMillis;
    use std::time::Duration;

    fn plan(consul: &Consul, target: Target) -> Result<Vec<String>, PlanError> {
        Ok(consul
            .plan(&StatsQuery {
                target,
                window: Duration::from_secs(30),
                at: UnixMillis(0),
            })?
            .queries
            .into_iter()
            .map(|p| p.promql)
            .collect())
    }

    #[test]
    fn services_are_served_at_the_public_listener() {
        let p = plan(
            &Consul::default(),
            Target::List {
                kind: Kind::Service,
                namespace: Some("shop".into()),
            },
        )
        .unwrap();
        assert_eq!(
            p[0],
            r#"sum by (namespace, consul_source_service, envoy_response_code_class) (increase(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=~"public_listener(_http)?", consul_source_service!="", namespace="shop"}[30s]))"#
        );
        assert!(p[1].contains("envoy_http_downstream_rq_time_bucket{"));
    }

    #[test]
    fn edges_join_the_callee_namespace() {
        let c = Consul::new(ScrapeLabels::default(), Some("dc1".into()));
        let p = plan(
            &c,
            Target::Edges(ResourceRef::namespaced(Kind::Service, "shop", "api")),
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[0],
            concat!(
                r#"sum by (destination_kubernetes_namespace, consul_destination_service, envoy_response_code_class) ("#,
                r#"increase(envoy_cluster_upstream_rq_xx{consul_destination_service!="", consul_source_datacenter="dc1", consul_destination_datacenter="dc1", consul_source_service="api", namespace="shop"}[30s])"#,
                r#" * on (consul_destination_service) group_left (destination_kubernetes_namespace) topk by (consul_destination_service) (1, group by (consul_destination_service, destination_kubernetes_namespace) ("#,
                r#"label_replace(label_replace(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=~"public_listener(_http)?", consul_source_datacenter="dc1"}, "consul_destination_service", "$1", "consul_source_service", "(.+)"), "destination_kubernetes_namespace", "$1", "namespace", "(.+)"))))"#
            )
        );
        assert!(p[2].starts_with("sum by (namespace, consul_source_service, envoy_response_code_class) (increase(envoy_cluster_upstream_rq_xx{"));
        assert!(p[2].contains(r#"consul_destination_service="api"}[30s]) and on (consul_destination_service) topk"#), "{}", p[2]);
        assert!(
            p[2].contains(r#"consul_source_datacenter="dc1", namespace="shop"}"#),
            "{}",
            p[2]
        );
        assert!(p[3].contains("envoy_cluster_upstream_rq_time_bucket{"));
    }

    #[test]
    fn namespace_edges_and_refusals() {
        let p = plan(
            &Consul::default(),
            Target::Edges(ResourceRef::namespace("shop")),
        )
        .unwrap();
        assert!(p[0]
            .starts_with("sum by (destination_kubernetes_namespace, envoy_response_code_class)"));
        assert!(p[2].starts_with("sum by (namespace, envoy_response_code_class)"));
        assert!(matches!(
            plan(
                &Consul::default(),
                Target::Edges(ResourceRef::namespaced(Kind::Pod, "a", "b"))
            ),
            Err(PlanError::UnsupportedEdges { .. })
        ));
        assert!(matches!(
            plan(
                &Consul::default(),
                Target::List {
                    kind: Kind::Deployment,
                    namespace: None
                }
            ),
            Err(PlanError::UnsupportedKind { .. })
        ));
    }

    #[test]
    fn class_five_fails() {
        let c = Consul::default();
        assert_eq!(
            c.outcome(&Labels::from_pairs([(CLASS, "5")])),
            Outcome::Failure
        );
        assert_eq!(
            c.outcome(&Labels::from_pairs([(CLASS, "4")])),
            Outcome::Success
        );
        assert_eq!(
            c.outcome(&Labels::from_pairs([(CLASS, "2")])),
            Outcome::Success
        );
    }
}
