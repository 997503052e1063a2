//! Mesh-neutral traffic simulation: every request of every step, with its endpoints, outcome and
//! latencies. Emitters turn these records into a mesh's series; the truth aggregates them directly.

use crate::rng::Rng;
use crate::topology::{Caller, Outcome, PodId, Scenario, Target};
use crate::STEP_SECS;

/// One request, made during one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// Index of the call in [`Scenario::calls`].
    pub(crate) call: u16,
    /// Calling pod; `None` for clients outside the cluster.
    src: Option<u16>,
    /// Serving pod; `None` for hosts outside the cluster.
    dst: Option<u16>,
    pub(crate) outcome: Outcome,
    /// Time to first byte at the server's proxy, microseconds.
    server_us: u32,
    /// Time to first byte at the client's proxy (server time plus network and proxy overhead).
    client_us: u32,
}

impl Request {
    /// Calling pod.
    pub(crate) fn src_pod(&self) -> Option<PodId> {
        self.src.map(usize::from)
    }

    /// Serving pod.
    pub(crate) fn dst_pod(&self) -> Option<PodId> {
        self.dst.map(usize::from)
    }

    /// `(server, client)` latency in microseconds; `None` when no response came back.
    pub(crate) fn latency_us(&self) -> Option<(u32, u32)> {
        self.outcome.has_response().then_some(self.durations_us())
    }

    /// `(server, client)` duration in microseconds, also for resets (the time until the reset),
    /// which proxies that answer a reset themselves (Envoy) record.
    pub(crate) fn durations_us(&self) -> (u32, u32) {
        (self.server_us, self.client_us)
    }
}

/// What requests that differ only in latency have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Flow {
    /// Index of the call in [`Scenario::calls`].
    pub(crate) call: u16,
    /// Calling pod (`None`: outside the cluster).
    pub(crate) src: Option<PodId>,
    /// Serving pod (`None`: outside the cluster).
    pub(crate) dst: Option<PodId>,
    pub(crate) outcome: Outcome,
}

/// Dense numbering of the flows of a dataset, so emitters can map requests to series with an
/// array lookup instead of hashing every request.
pub(crate) struct Flows {
    /// Flow id by [`Flows::slot`]; `u32::MAX` for flows that never occur.
    ids: Vec<u32>,
    flows: Vec<Flow>,
    /// Pods plus one (for `None`).
    pods: usize,
    /// Most outcomes of any call.
    outcomes: usize,
}

impl Flows {
    /// Numbers the flows of `traffic` in order of first appearance.
    pub(crate) fn new(s: &Scenario, traffic: &Traffic) -> Flows {
        let pods = s.pods.len() + 1;
        let outcomes = s.calls.iter().map(|c| c.outcomes.len()).max().unwrap_or(0);
        let mut f = Flows {
            ids: vec![u32::MAX; s.calls.len() * pods * pods * outcomes],
            flows: Vec::new(),
            pods,
            outcomes,
        };
        for r in traffic.all() {
            let slot = f.slot(s, r);
            if f.ids[slot] == u32::MAX {
                f.ids[slot] = f.flows.len() as u32;
                f.flows.push(Flow {
                    call: r.call,
                    src: r.src_pod(),
                    dst: r.dst_pod(),
                    outcome: r.outcome,
                });
            }
        }
        f
    }

    /// Position of a request's flow in `ids`.
    fn slot(&self, s: &Scenario, r: &Request) -> usize {
        let call = usize::from(r.call);
        let outcome = s.calls[call]
            .outcomes
            .iter()
            .position(|&(o, _)| o == r.outcome)
            .expect("outcomes come from the call");
        let pod = |p: Option<u16>| p.map_or(0, |p| usize::from(p) + 1);
        ((call * self.pods + pod(r.src)) * self.pods + pod(r.dst)) * self.outcomes + outcome
    }

    /// The id of a request's flow.
    pub(crate) fn id(&self, s: &Scenario, r: &Request) -> usize {
        self.ids[self.slot(s, r)] as usize
    }

    /// Every flow, by id.
    pub(crate) fn all(&self) -> &[Flow] {
        &self.flows
    }
}

/// All requests of a dataset, grouped by step.
#[derive(Debug, Clone)]
pub(crate) struct Traffic {
    /// `requests[offsets[k - 1]..offsets[k]]` are the requests of step `k` (1-based).
    offsets: Vec<usize>,
    requests: Vec<Request>,
}

impl Traffic {
    /// Simulates steps `1..=steps` (step `k` happens `k * STEP_SECS` seconds after the start).
    pub(crate) fn simulate(s: &Scenario, steps: usize) -> Traffic {
        let mut offsets = vec![0];
        let mut requests = Vec::new();
        for k in 1..=steps {
            simulate_step(s, k, &mut requests);
            offsets.push(requests.len());
        }
        Traffic { offsets, requests }
    }

    /// Number of simulated steps.
    pub(crate) fn steps(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Requests of step `k` (1-based).
    pub(crate) fn step(&self, k: usize) -> &[Request] {
        &self.requests[self.offsets[k - 1]..self.offsets[k]]
    }

    /// All requests of all steps.
    pub(crate) fn all(&self) -> &[Request] {
        &self.requests
    }
}

/// Pods of `workloads` that are ready at the step `offset` seconds after the start.
fn ready_pods(s: &Scenario, workloads: &[usize], offset: i64) -> Vec<PodId> {
    workloads
        .iter()
        .flat_map(|&w| s.workloads[w].pods.iter().copied())
        .filter(|&p| !s.restarts_at(p, offset))
        .collect()
}

/// Load factor of a call at step `k`: a slow triangle wave (15-minute period, ±30 %) times
/// per-step jitter (±25 %).
fn load_factor(k: usize, call: usize, rng: &mut Rng) -> f64 {
    const PERIOD: usize = 90;
    let phase = ((k + call * 17) % PERIOD) as f64 / PERIOD as f64; // [0, 1)
    let triangle = 1.0 - 4.0 * (phase - 0.5).abs(); // [-1, 1]
    (1.0 + 0.3 * triangle) * (0.75 + 0.5 * rng.unit())
}

fn simulate_step(s: &Scenario, k: usize, out: &mut Vec<Request>) {
    let offset = k as i64 * STEP_SECS;
    for (c, call) in s.calls.iter().enumerate() {
        if call.active_until.is_some_and(|until| offset > until) {
            continue;
        }
        let mut rng = Rng::stream(s.seed, &[c as u64, k as u64]);
        let mean = call.rps * STEP_SECS as f64 * load_factor(k, c, &mut rng);
        let n = (mean + rng.unit()) as usize;
        let callers: Vec<Option<PodId>> = match call.from {
            Caller::Workload(w) => ready_pods(s, &[w], offset).into_iter().map(Some).collect(),
            Caller::Outside => vec![None],
        };
        let targets: Vec<Option<PodId>> = match &call.to {
            Target::Service(svc) => ready_pods(s, &s.services[*svc].backends, offset)
                .into_iter()
                .map(Some)
                .collect(),
            Target::PodIp { workload, .. } => ready_pods(s, &[*workload], offset)
                .into_iter()
                .map(Some)
                .collect(),
            Target::External { .. } => vec![None],
        };
        if callers.is_empty() || targets.is_empty() {
            continue;
        }
        let weights: Vec<u32> = call.outcomes.iter().map(|&(_, w)| w).collect();
        for _ in 0..n {
            let src = callers[rng.below(callers.len())];
            let dst = targets[rng.below(targets.len())];
            let outcome = call.outcomes[rng.weighted(&weights)].0;
            let server_ms = rng
                .log_normal(call.latency.median_ms, call.latency.sigma)
                .clamp(0.2, 45_000.0);
            let overhead_ms = rng.log_normal(0.9, 0.5).clamp(0.1, 20.0);
            out.push(Request {
                call: c as u16,
                src: src.map(|p| p as u16),
                dst: dst.map(|p| p as u16),
                outcome,
                server_us: (server_ms * 1000.0).round() as u32,
                client_us: ((server_ms + overhead_ms) * 1000.0).round() as u32,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DB_RESTARTS, RECOMMENDER_IDLE_AFTER};

    #[test]
    fn simulation_is_deterministic() {
        let s = Scenario::demo();
        let a = Traffic::simulate(&s, 12);
        let b = Traffic::simulate(&s, 12);
        assert_eq!(a.all().len(), b.all().len());
        for (x, y) in a.all().iter().zip(b.all()) {
            assert_eq!(
                (x.call, x.src, x.dst, x.outcome, x.latency_us()),
                (y.call, y.src, y.dst, y.outcome, y.latency_us())
            );
        }
    }

    #[test]
    fn restarting_pod_and_idle_workload_get_no_traffic() {
        let s = Scenario::demo();
        let t = Traffic::simulate(&s, 120);
        let db1 = s.pods.iter().position(|p| p.name == "db-1").unwrap();
        let rec = s
            .workloads
            .iter()
            .position(|w| w.name == "recommender")
            .unwrap();
        let rec_pod = s.workloads[rec].pods[0];
        let k = (DB_RESTARTS[0] / STEP_SECS) as usize;
        assert!(t.step(k).iter().all(|r| r.dst_pod() != Some(db1)));
        assert!(t.step(k - 1).iter().any(|r| r.dst_pod() == Some(db1)));
        let idle_from = (RECOMMENDER_IDLE_AFTER / STEP_SECS) as usize + 1;
        assert!(t
            .step(idle_from - 1)
            .iter()
            .any(|r| r.dst_pod() == Some(rec_pod)));
        assert!((idle_from..=120).all(|k| t.step(k).iter().all(|r| r.dst_pod() != Some(rec_pod))));
    }
}
