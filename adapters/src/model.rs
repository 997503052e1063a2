//! The mesh-neutral model: what is asked (a [`StatsQuery`]) and what is answered
//! ([`StatsResult`]). Nothing here knows about PromQL, HTTP or Kubernetes JSON.

use std::fmt;
use std::time::Duration;

/// A kind of Kubernetes object that traffic metrics can be reported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A namespace: the aggregate of all meshed pods in it (cluster-scoped).
    Namespace,
    /// A single pod.
    Pod,
    /// The pods owned by a Deployment.
    Deployment,
    /// The pods owned by a DaemonSet.
    DaemonSet,
    /// The pods owned by a StatefulSet.
    StatefulSet,
    /// The pods owned by a Job.
    Job,
    /// The pods behind a Service, as meshes that name services rather than workloads
    /// (Consul, Kuma) see them: all traffic those pods serve.
    Service,
}

impl Kind {
    /// Every kind, in the order discovery lists them.
    pub const ALL: [Kind; 7] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::StatefulSet,
        Kind::Job,
        Kind::Service,
    ];

    /// The lower-case plural used in URL paths (`deployments`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::DaemonSet => "daemonsets",
            Kind::StatefulSet => "statefulsets",
            Kind::Job => "jobs",
            Kind::Service => "services",
        }
    }

    /// Looks a kind up by its URL plural.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.plural())
    }
}

/// A reference to one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    /// The object's kind.
    pub kind: Kind,
    /// Its namespace; `None` exactly when `kind` is [`Kind::Namespace`].
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ResourceRef {
    /// A reference to a namespaced object.
    pub fn namespaced(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceRef {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A reference to a namespace.
    pub fn namespace(name: impl Into<String>) -> Self {
        ResourceRef {
            kind: Kind::Namespace,
            namespace: None,
            name: name.into(),
        }
    }

    /// The namespace the object belongs to, for routing to a backend: its own name
    /// for a namespace.
    pub fn home_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(&self.name)
    }
}

/// What a query is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every object of `kind` with traffic data, in one namespace or (None) all.
    List {
        /// The kind listed.
        kind: Kind,
        /// Restricts the list to one namespace; must be `None` for namespaces.
        namespace: Option<String>,
    },
    /// One object.
    One(ResourceRef),
    /// The traffic edges of one object, to and from peers of the same kind.
    Edges(ResourceRef),
}

impl Target {
    /// The kind of the objects the answer describes.
    pub fn kind(&self) -> Kind {
        match self {
            Target::List { kind, .. } => *kind,
            Target::One(r) | Target::Edges(r) => r.kind,
        }
    }
}

/// A point in time: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMillis(d.as_millis() as i64)
    }

    /// This time rounded down to a multiple of `step` (a zero step leaves it unchanged).
    pub fn align_down(self, step: Duration) -> Self {
        let step = step.as_millis() as i64;
        if step <= 0 {
            return self;
        }
        UnixMillis(self.0.div_euclid(step) * step)
    }
}

/// One question to a mesh backend: traffic of `target` in the window that ends at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatsQuery {
    /// What the answer describes.
    pub target: Target,
    /// The length of the window.
    pub window: Duration,
    /// The end of the window (the evaluation time).
    pub at: UnixMillis,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The traffic of one object (or one edge) in a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrafficStats {
    /// Responses counted as successful (see the success rule in the README).
    pub success: f64,
    /// Responses counted as failed.
    pub failure: f64,
    /// Latency percentiles; `None` when no request completed in the window.
    pub latency: Option<Latency>,
}

/// Direction of an edge, seen from the queried resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic from the peer into the resource.
    From,
    /// Traffic from the resource to the peer.
    To,
}

/// Stats of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceStats {
    /// The object.
    pub resource: ResourceRef,
    /// Its traffic.
    pub stats: TrafficStats,
}

/// Stats of the traffic between a resource and one peer, in one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeStats {
    /// The queried resource.
    pub resource: ResourceRef,
    /// Which way the traffic flows.
    pub direction: Direction,
    /// The other end.
    pub peer: ResourceRef,
    /// The traffic.
    pub stats: TrafficStats,
}

/// The answer to a [`StatsQuery`]: items sorted deterministically.
#[derive(Debug, Clone, PartialEq)]
pub enum StatsResult {
    /// For [`Target::List`] and [`Target::One`], sorted by namespace then name.
    Resources(Vec<ResourceStats>),
    /// For [`Target::Edges`], sorted by direction, peer namespace, peer name.
    Edges(Vec<EdgeStats>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_round_trips() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_plural(k.plural()), Some(k));
        }
        assert_eq!(Kind::from_plural("services"), Some(Kind::Service));
        assert_eq!(Kind::from_plural("replicasets"), None);
        assert!(!Kind::Namespace.namespaced());
        assert!(Kind::Pod.namespaced());
    }

    #[test]
    fn align_down_rounds_toward_the_past() {
        let t = UnixMillis(1_700_000_012_345);
        assert_eq!(
            t.align_down(Duration::from_secs(10)),
            UnixMillis(1_700_000_010_000)
        );
        assert_eq!(t.align_down(Duration::ZERO), t);
    }
}
