//! Synthetic meshes of a given size, for benchmarks: `workloads` Deployments (one pod and one
//! Service each) and `edges` caller → callee workload pairs, spread over namespaces of ten
//! workloads. The application is built as independent cells of at most 100
//! workloads (calls never cross a cell, but do cross namespaces inside one), so that a large
//! scenario can be [split](Scenario::split) into small ones that simulate and emit quickly and
//! whose series, written one after another, form the whole dataset.

use std::collections::BTreeMap;

use crate::rng::Rng;
use crate::topology::{Call, Caller, Kind, Latency, Outcome, Scenario, Target};

/// Seed of the scaled scenarios' random streams.
const SCALED_SEED: u64 = 0x5CA1_ED00_BE4C;

/// Workloads per namespace.
const NAMESPACE_WORKLOADS: usize = 10;

/// Most workloads in one cell (calls stay inside a cell).
const CELL_WORKLOADS: usize = 100;

impl Scenario {
    /// A synthetic mesh of `workloads` Deployments and `edges` distinct caller → callee
    /// workload pairs (at most `n·(n-1)` per cell of `n` workloads; more are capped).
    ///
    /// * Namespaces `scale-0000`, `scale-0001`, … hold ten workloads each; workloads are named
    ///   `app-00000`, `app-00001`, … (globally unique) with one pod and a Service of the same name.
    /// * Every workload belongs to a cell of up to 100 (ten namespaces); a cell's edges are drawn
    ///   at random among its workloads (a workload never calls itself), so edges cross
    ///   namespaces but not cells, and each workload has about `edges / workloads` callees.
    /// * Each edge is an HTTP call of 0.5–2 requests per second, 1 % of them answered 503,
    ///   with a log-normal latency of median 2–50 ms.
    ///
    /// Deterministic: the same arguments always give the same scenario.
    pub fn scaled(workloads: usize, edges: usize) -> Scenario {
        let mut s = Scenario::empty(SCALED_SEED);
        for ns in 0..workloads.div_ceil(NAMESPACE_WORKLOADS) {
            s.add_namespace(&namespace_name(ns), true);
        }
        let mut services = Vec::with_capacity(workloads);
        for w in 0..workloads {
            let ns = namespace_name(w / NAMESPACE_WORKLOADS);
            let name = format!("app-{w:05}");
            let id = s.add_workload(Kind::Deployment, &ns, &name, 1);
            services.push(s.add_service(&ns, &name, 8080, &[id]));
        }
        let cells = workloads.div_ceil(CELL_WORKLOADS);
        for cell in 0..cells {
            let first = cell * CELL_WORKLOADS;
            let size = CELL_WORKLOADS.min(workloads - first);
            // this cell's share of the edges, the remainder going to the first cells
            let share = edges / cells + usize::from(cell < edges % cells);
            let wanted = share.min(size * size.saturating_sub(1));
            let mut rng = Rng::stream(SCALED_SEED, &[cell as u64]);
            let mut pairs = std::collections::BTreeSet::new();
            while pairs.len() < wanted {
                let from = first + rng.below(size);
                let to = first + rng.below(size);
                if from != to {
                    pairs.insert((from, to));
                }
            }
            for (from, to) in pairs {
                s.calls.push(Call {
                    from: Caller::Workload(from),
                    to: Target::Service(services[to]),
                    authority: None,
                    rps: 0.5 + 1.5 * rng.unit(),
                    active_until: None,
                    outcomes: vec![(Outcome::Http(200), 990), (Outcome::Http(503), 10)],
                    latency: Latency {
                        median_ms: 2.0 + 48.0 * rng.unit(),
                        sigma: 0.5,
                    },
                });
            }
        }
        s
    }

    /// The scenario's independent parts: workloads connected by calls stay together (with their
    /// pods, Services, namespaces and calls), and no call links two parts. Each part has its own
    /// random streams. Parts simulate and emit independently; their series never overlap when
    /// no namespace is shared between parts (true of [`Scenario::scaled`] cells, whose
    /// namespaces align with cells).
    pub fn split(&self) -> Vec<Scenario> {
        // union-find over workloads
        let mut parent: Vec<usize> = (0..self.workloads.len()).collect();
        fn root(parent: &mut [usize], mut w: usize) -> usize {
            while parent[w] != w {
                parent[w] = parent[parent[w]];
                w = parent[w];
            }
            w
        }
        let mut join = |a: usize, b: usize| {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra.max(rb)] = ra.min(rb);
        };
        for call in &self.calls {
            let Caller::Workload(from) = call.from else {
                continue;
            };
            match &call.to {
                Target::Service(svc) => {
                    for &b in &self.services[*svc].backends {
                        join(from, b);
                    }
                }
                Target::PodIp { workload, .. } => join(from, *workload),
                Target::External { .. } => {}
            }
        }
        for svc in &self.services {
            for pair in svc.backends.windows(2) {
                join(pair[0], pair[1]);
            }
        }
        let mut parts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for w in 0..self.workloads.len() {
            parts.entry(root(&mut parent, w)).or_default().push(w);
        }
        parts
            .into_values()
            .enumerate()
            .map(|(i, members)| self.part(i as u64, &members))
            .collect()
    }

    /// The part made of `members` (workload ids, ascending) and everything attached to them.
    fn part(&self, index: u64, members: &[usize]) -> Scenario {
        let mut p = Scenario::empty(self.seed ^ Rng::stream(self.seed, &[index]).next_u64());
        let mut workload_map = vec![usize::MAX; self.workloads.len()];
        for (new, &old) in members.iter().enumerate() {
            workload_map[old] = new;
        }
        for ns in &self.namespaces {
            if members
                .iter()
                .any(|&w| self.workloads[w].namespace == ns.name)
            {
                p.namespaces.push(ns.clone());
            }
        }
        for &old in members {
            let mut w = self.workloads[old].clone();
            w.pods = w
                .pods
                .iter()
                .map(|&pod| {
                    let mut copy = self.pods[pod].clone();
                    copy.workload = workload_map[old];
                    p.pods.push(copy);
                    p.pods.len() - 1
                })
                .collect();
            p.workloads.push(w);
        }
        let mut service_map = vec![usize::MAX; self.services.len()];
        for (old, svc) in self.services.iter().enumerate() {
            if svc.backends.iter().any(|&b| workload_map[b] != usize::MAX) {
                let mut copy = svc.clone();
                copy.backends = svc.backends.iter().map(|&b| workload_map[b]).collect();
                service_map[old] = p.services.len();
                p.services.push(copy);
            }
        }
        for call in &self.calls {
            let from = match call.from {
                Caller::Workload(w) if workload_map[w] != usize::MAX => {
                    Caller::Workload(workload_map[w])
                }
                _ => continue,
            };
            let to = match &call.to {
                Target::Service(s) => Target::Service(service_map[*s]),
                Target::PodIp { workload, port } => Target::PodIp {
                    workload: workload_map[*workload],
                    port: *port,
                },
                Target::External { host } => Target::External { host: host.clone() },
            };
            p.calls.push(Call {
                from,
                to,
                ..call.clone()
            });
        }
        p
    }

    /// Number of workloads.
    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    /// Number of distinct caller → callee workload pairs that calls connect.
    pub fn workload_edge_count(&self) -> usize {
        let mut pairs = std::collections::BTreeSet::new();
        for call in &self.calls {
            let Caller::Workload(from) = call.from else {
                continue;
            };
            match &call.to {
                Target::Service(svc) => {
                    pairs.extend(self.services[*svc].backends.iter().map(|&b| (from, b)));
                }
                Target::PodIp { workload, .. } => {
                    pairs.insert((from, *workload));
                }
                Target::External { .. } => {}
            }
        }
        pairs.len()
    }

    /// Namespace names, in order.
    pub fn namespace_names(&self) -> Vec<String> {
        self.namespaces.iter().map(|n| n.name.clone()).collect()
    }

    /// `(namespace, name)` of every workload, in order.
    pub fn workload_names(&self) -> Vec<(String, String)> {
        self.workloads
            .iter()
            .map(|w| (w.namespace.clone(), w.name.clone()))
            .collect()
    }
}

/// The name of the `i`-th scaled namespace.
fn namespace_name(i: usize) -> String {
    format!("scale-{i:04}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dataset, Mesh};

    #[test]
    fn sizes_and_names() {
        let s = Scenario::scaled(250, 2000);
        assert_eq!(s.workload_count(), 250);
        assert_eq!(s.workload_edge_count(), 2000);
        assert_eq!(s.namespace_names().len(), 25);
        assert_eq!(
            s.workload_names()[42],
            ("scale-0004".to_string(), "app-00042".to_string())
        );
        // small cells cap their edges
        assert_eq!(Scenario::scaled(3, 100).workload_edge_count(), 6);
    }

    #[test]
    fn split_keeps_cells_together_and_everything_once() {
        let s = Scenario::scaled(250, 2000);
        let parts = s.split();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts
                .iter()
                .map(Scenario::workload_count)
                .collect::<Vec<_>>(),
            [100, 100, 50]
        );
        assert_eq!(
            parts.iter().map(|p| p.workload_edge_count()).sum::<usize>(),
            2000
        );
        assert_eq!(
            parts
                .iter()
                .map(|p| p.namespace_names().len())
                .sum::<usize>(),
            25
        );
        let names: Vec<_> = parts.iter().flat_map(Scenario::workload_names).collect();
        assert_eq!(names, s.workload_names());
        assert_ne!(parts[0].seed, parts[1].seed);
    }

    #[test]
    fn parts_emit_linkerd_series() {
        let parts = Scenario::scaled(20, 150).split();
        assert_eq!(parts.len(), 1);
        let ds = Dataset::generate(&parts[0], 1_700_000_000, 1_700_000_060);
        let mut out = Vec::new();
        ds.write_openmetrics(Mesh::Linkerd, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#"dst_deployment="app-000"#));
        assert!(text.contains(r#"namespace="scale-0001""#));
        assert!(text.ends_with("# EOF\n"));
    }
}
