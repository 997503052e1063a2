//! The mesh-neutral application model: namespaces, workloads, pods, services, and the calls between
//! them. Nothing here knows about any mesh's metric names or labels.

use serde::Serialize;

use crate::rng::Rng;

/// Kubernetes resource kinds the SMI Traffic Metrics API reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// A namespace: aggregates all meshed pods in it.
    Namespace,
    /// A single pod.
    Pod,
    /// A Deployment (its pods, through its ReplicaSet).
    Deployment,
    /// A DaemonSet.
    DaemonSet,
    /// A StatefulSet.
    StatefulSet,
    /// A batch Job.
    Job,
    /// A Service: the pods it selects (as Consul and Kuma see services).
    Service,
}

/// A reference to one Kubernetes resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Res {
    /// The resource kind.
    pub kind: Kind,
    /// Its namespace; `None` only for [`Kind::Namespace`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl Res {
    /// A namespaced resource.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Res {
        Res {
            kind,
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    /// A namespace.
    pub fn namespace(name: &str) -> Res {
        Res {
            kind: Kind::Namespace,
            namespace: None,
            name: name.to_owned(),
        }
    }
}

/// Index of a pod in [`Scenario::pods`].
pub(crate) type PodId = usize;
/// Index of a workload in [`Scenario::workloads`].
pub(crate) type WorkloadId = usize;

/// One namespace.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    /// Whether pods here run a mesh proxy.
    pub(crate) meshed: bool,
}

/// A pod-owning workload.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// Deployment, StatefulSet, DaemonSet or Job.
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) meshed: bool,
    pub(crate) service_account: String,
    /// Value of the pods' `app` label.
    pub(crate) app: String,
    /// `pod-template-hash` of Deployment pods (the ReplicaSet suffix).
    pub(crate) template_hash: Option<String>,
    /// `controller-revision-hash` of StatefulSet and DaemonSet pods.
    pub(crate) revision_hash: Option<String>,
    pub(crate) pods: Vec<PodId>,
}

/// One pod.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub(crate) name: String,
    pub(crate) workload: WorkloadId,
    pub(crate) ip: String,
    /// Offsets from the dataset start (seconds) at which the pod's containers restart: the pod is
    /// not ready during that step and every counter of its proxy starts over from zero.
    pub(crate) restarts: Vec<i64>,
}

/// A Kubernetes Service selecting the pods of one or more workloads.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) backends: Vec<WorkloadId>,
}

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The pods of a workload (meshed or not).
    Workload(WorkloadId),
    /// Clients outside the cluster (never meshed, no pod).
    Outside,
}

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Through a Service: a random ready backend pod per request.
    Service(usize),
    /// Straight to pod IPs of a workload (no Service), e.g. scraping.
    PodIp { workload: WorkloadId, port: u16 },
    /// A host outside the cluster (no pod, never meshed).
    External { host: String },
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// An HTTP response with this status code.
    Http(u16),
    /// A gRPC response (HTTP 200) with this `grpc-status`.
    Grpc(u8),
    /// The stream was reset before any response: no response, no latency observation.
    Reset,
}

impl Outcome {
    /// Whether a response came back (and so a latency was observed).
    pub(crate) fn has_response(self) -> bool {
        self != Outcome::Reset
    }

    /// The SMI rule: 5xx, failing gRPC codes (2, 4, 13, 14, 15) and missing responses fail.
    pub(crate) fn is_failure(self) -> bool {
        match self {
            Outcome::Http(code) => (500..600).contains(&code),
            Outcome::Grpc(status) => matches!(status, 2 | 4 | 13 | 14 | 15),
            Outcome::Reset => true,
        }
    }
}

/// Server-side latency distribution of a call (log-normal, clamped).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) median_ms: f64,
    pub(crate) sigma: f64,
}

/// A steady flow of requests from a caller to a target (gRPC when its outcomes are gRPC statuses).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) from: Caller,
    pub(crate) to: Target,
    /// `:authority` override (default: derived from the target).
    pub(crate) authority: Option<String>,
    /// Mean requests per second over the whole caller.
    pub(crate) rps: f64,
    /// Traffic only at steps whose offset from the dataset start is at most this (seconds).
    pub(crate) active_until: Option<i64>,
    /// Outcome mix: relative weights.
    pub(crate) outcomes: Vec<(Outcome, u32)>,
    pub(crate) latency: Latency,
}

/// The application topology: everything needed to simulate traffic.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) seed: u64,
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) pods: Vec<Pod>,
    pub(crate) services: Vec<Service>,
    pub(crate) calls: Vec<Call>,
}

impl Scenario {
    /// An empty scenario whose random choices derive from `seed`.
    pub(crate) fn empty(seed: u64) -> Scenario {
        Scenario {
            seed,
            namespaces: Vec::new(),
            workloads: Vec::new(),
            pods: Vec::new(),
            services: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// Whether a pod runs a mesh proxy.
    pub(crate) fn meshed(&self, pod: PodId) -> bool {
        self.workloads[self.pods[pod].workload].meshed
    }

    /// The workload owning a pod.
    pub(crate) fn owner(&self, pod: PodId) -> &Workload {
        &self.workloads[self.pods[pod].workload]
    }

    /// Whether the pod restarts at the step `offset` seconds after the dataset start.
    pub(crate) fn restarts_at(&self, pod: PodId, offset: i64) -> bool {
        self.pods[pod].restarts.contains(&offset)
    }

    /// The `:authority` of a call's requests.
    pub(crate) fn authority(&self, call: &Call, dst: Option<PodId>) -> String {
        if let Some(a) = &call.authority {
            return a.clone();
        }
        match &call.to {
            Target::Service(s) => {
                let s = &self.services[*s];
                format!("{}.{}.svc.cluster.local:{}", s.name, s.namespace, s.port)
            }
            Target::PodIp { port, .. } => {
                let ip = dst.map_or("0.0.0.0", |p| self.pods[p].ip.as_str());
                format!("{ip}:{port}")
            }
            Target::External { host } => host.clone(),
        }
    }

    /// The port a call reaches on the destination pod.
    pub(crate) fn target_port(&self, call: &Call) -> u16 {
        match &call.to {
            Target::Service(s) => self.services[*s].port,
            Target::PodIp { port, .. } => *port,
            Target::External { .. } => 80,
        }
    }

    /// The resource of kind `kind` that contains the pod, if any (e.g. its Deployment).
    pub(crate) fn resource_of(&self, pod: PodId, kind: Kind) -> Option<Res> {
        let w = self.owner(pod);
        match kind {
            Kind::Namespace => Some(Res::namespace(&w.namespace)),
            Kind::Pod => Some(Res::new(Kind::Pod, &w.namespace, &self.pods[pod].name)),
            Kind::Service => self
                .service_of(pod)
                .map(|s| Res::new(Kind::Service, &s.namespace, &s.name)),
            k if k == w.kind => Some(Res::new(k, &w.namespace, &w.name)),
            _ => None,
        }
    }

    /// The (first) Service selecting the pod.
    pub(crate) fn service_of(&self, pod: PodId) -> Option<&Service> {
        let w = self.pods[pod].workload;
        self.services.iter().find(|s| s.backends.contains(&w))
    }

    // ---- building ----

    /// Adds a namespace.
    pub(crate) fn add_namespace(&mut self, name: &str, meshed: bool) {
        self.namespaces.push(Namespace {
            name: name.to_owned(),
            meshed,
        });
    }

    /// Adds a workload with `replicas` pods named the way its controller would name them.
    pub(crate) fn add_workload(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        replicas: usize,
    ) -> WorkloadId {
        let meshed = self
            .namespaces
            .iter()
            .find(|n| n.name == namespace)
            .expect("namespace added first")
            .meshed;
        let id = self.workloads.len();
        let mut rng = Rng::stream(self.seed, &[name_hash(namespace), name_hash(name)]);
        let template_hash = (kind == Kind::Deployment).then(|| random_suffix(&mut rng, 10));
        let revision_hash = matches!(kind, Kind::StatefulSet | Kind::DaemonSet)
            .then(|| format!("{name}-{}", random_suffix(&mut rng, 10)));
        let mut pods = Vec::new();
        for ordinal in 0..replicas {
            let pod_name = pod_name(kind, name, template_hash.as_deref(), ordinal, &mut rng);
            let n = self.pods.len();
            pods.push(n);
            self.pods.push(Pod {
                name: pod_name,
                workload: id,
                ip: format!("10.42.{}.{}", n % 3, 11 + n),
                restarts: Vec::new(),
            });
        }
        self.workloads.push(Workload {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            meshed,
            service_account: name.replace('.', "-"),
            app: name.to_owned(),
            template_hash,
            revision_hash,
            pods,
        });
        id
    }

    /// Adds a Service selecting the pods of `backends`.
    pub(crate) fn add_service(
        &mut self,
        namespace: &str,
        name: &str,
        port: u16,
        backends: &[WorkloadId],
    ) -> usize {
        self.services.push(Service {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port,
            backends: backends.to_vec(),
        });
        self.services.len() - 1
    }
}

/// Characters Kubernetes uses for generated name suffixes (`rand.SafeEncodeString`: no vowels,
/// no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random Kubernetes-style suffix of `len` characters.
fn random_suffix(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(NAME_ALPHABET[rng.below(NAME_ALPHABET.len())]))
        .collect()
}

/// The name a controller gives its pod: `web-7d4b9c6f5d-x2k8p` (Deployment), `db-0`
/// (StatefulSet), `node-agent-x7k2p` (DaemonSet, Job).
fn pod_name(
    kind: Kind,
    workload: &str,
    template_hash: Option<&str>,
    ordinal: usize,
    rng: &mut Rng,
) -> String {
    match (kind, template_hash) {
        (Kind::Deployment, Some(hash)) => format!("{workload}-{hash}-{}", random_suffix(rng, 5)),
        (Kind::StatefulSet, _) => format!("{workload}-{ordinal}"),
        _ => format!("{workload}-{}", random_suffix(rng, 5)),
    }
}

/// A stable 64-bit hash of a name (FNV-1a), used to derive per-name random streams.
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_k8s_suffix(s: &str) -> bool {
        s.bytes().all(|b| NAME_ALPHABET.contains(&b))
    }

    #[test]
    fn pod_names_follow_controller_conventions() {
        let mut s = Scenario::empty(42);
        s.add_namespace("shop", true);
        let web = s.add_workload(Kind::Deployment, "shop", "web", 2);
        let db = s.add_workload(Kind::StatefulSet, "shop", "db", 2);
        let agent = s.add_workload(Kind::DaemonSet, "shop", "node-agent", 1);
        let w = &s.workloads[web];
        let hash = w.template_hash.clone().unwrap();
        assert_eq!(hash.len(), 10);
        assert!(is_k8s_suffix(&hash));
        for &p in &w.pods {
            let name = &s.pods[p].name;
            let rest = name.strip_prefix(&format!("web-{hash}-")).unwrap();
            assert_eq!(rest.len(), 5);
            assert!(is_k8s_suffix(rest));
        }
        assert_ne!(s.pods[w.pods[0]].name, s.pods[w.pods[1]].name);
        let db_pods: Vec<&str> = s.workloads[db]
            .pods
            .iter()
            .map(|&p| s.pods[p].name.as_str())
            .collect();
        assert_eq!(db_pods, ["db-0", "db-1"]);
        let agent_pod = &s.pods[s.workloads[agent].pods[0]].name;
        let rest = agent_pod.strip_prefix("node-agent-").unwrap();
        assert_eq!(rest.len(), 5);
        assert!(is_k8s_suffix(rest));
    }

    #[test]
    fn pod_names_are_deterministic() {
        let build = || {
            let mut s = Scenario::empty(42);
            s.add_namespace("shop", true);
            s.add_workload(Kind::Deployment, "shop", "web", 3);
            s.pods.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(build(), build());
    }

    #[test]
    fn smi_failure_rule() {
        assert!(!Outcome::Http(200).is_failure());
        assert!(!Outcome::Http(404).is_failure());
        assert!(!Outcome::Http(429).is_failure());
        assert!(Outcome::Http(500).is_failure());
        assert!(Outcome::Http(503).is_failure());
        for ok in [0, 1, 3, 5, 7, 16] {
            assert!(!Outcome::Grpc(ok).is_failure(), "{ok}");
        }
        for bad in [2, 4, 13, 14, 15] {
            assert!(Outcome::Grpc(bad).is_failure(), "{bad}");
        }
        assert!(Outcome::Reset.is_failure());
    }
}
