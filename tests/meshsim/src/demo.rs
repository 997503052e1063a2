//! The demo application: a small shop spread over several namespaces, built to contain the traps an
//! SMI metrics server must handle (see the crate docs for the list).

use crate::topology::{Call, Caller, Kind, Latency, Outcome, Scenario, Target};

use Outcome::{Grpc, Http, Reset};

/// Seed of the demo scenario's random streams.
const DEMO_SEED: u64 = 0x05EE_D0F5_A1E0;

/// Seconds after the dataset start at which `shop/db-1` restarts (counters start over).
pub(crate) const DB_RESTARTS: [i64; 3] = [1050, 2250, 3450];

/// Seconds after the dataset start after which `shop/recommender` gets no more traffic.
pub(crate) const RECOMMENDER_IDLE_AFTER: i64 = 300;

fn lat(median_ms: f64, sigma: f64) -> Latency {
    Latency { median_ms, sigma }
}

fn call(from: Caller, to: Target, rps: f64, outcomes: &[(Outcome, u32)], latency: Latency) -> Call {
    Call {
        from,
        to,
        authority: None,
        rps,
        active_until: None,
        outcomes: outcomes.to_vec(),
        latency,
    }
}

impl Scenario {
    /// The demo topology (deterministic; pod names are fixed by the seed).
    ///
    /// | namespace | workload (kind, pods) | notes |
    /// |---|---|---|
    /// | `platform` (meshed) | `ingress` (Deployment, 2) | called from outside the cluster (unmeshed, authority `shop.example.com`) |
    /// | | `collector` (Deployment, 1) | calls node-agent pods and the report Job pod by pod IP (no `dst_service`) |
    /// | | `node-agent` (DaemonSet, 3) | calls collector; behind a headless Service of its name |
    /// | `shop` (meshed) | `web` (Deployment, 2) | |
    /// | | `api` (Deployment, 2) | answers 404/400/429 (success) and 503 |
    /// | | `cart` (Deployment, 1) | |
    /// | | `store.v1`, `store-v1` (Deployment, 1 each) | both behind Service `store` |
    /// | | `db` (StatefulSet: `db-0`, `db-1`) | `db-1` restarts 17.5, 37.5 and 57.5 min after the start |
    /// | | `recommender` (Deployment, 1) | traffic only in the first 5 minutes |
    /// | `payments` (meshed) | `ledger` (Deployment, 2) | gRPC: statuses 0, 3, 5, 7 (success), 2, 4, 13, 14, 15 (failure) |
    /// | | `gateway` (Deployment, 1) | answers 500/502/503 and resets streams |
    /// | `batch` (meshed; ambient under Istio) | `report-28419360` (Job, 1) | a CronJob's Job (Istio and Hubble call it `report`); behind Service `report` |
    /// | `legacy` (unmeshed) | `poller`, `mainframe` (Deployment, 1 each) | no proxy, no series of their own (Hubble still names them as peers) |
    ///
    /// Calls (mean requests per second, varying ±30 % over 15 minutes and ±25 % per step):
    /// outside → ingress 40; ingress → web 38; web → api 60; web → recommender 10 (first 5 min);
    /// api → cart 20, → store 25, → db 30, → ledger 30 (gRPC, cross-namespace);
    /// cart → db 10, → gateway 8 (failing); gateway → ledger 12, → `rates.example.com` 3
    /// (external), → mainframe 4 (unmeshed); ledger → ledger 10 (self edge); poller → api 5
    /// (unmeshed caller); node-agent → collector 30; collector → node-agent 15, → report 5;
    /// report → api 10, → ledger 8.
    pub fn demo() -> Scenario {
        let mut s = Scenario::empty(DEMO_SEED);
        for (ns, meshed) in [
            ("platform", true),
            ("shop", true),
            ("payments", true),
            ("batch", true),
            ("legacy", false),
        ] {
            s.add_namespace(ns, meshed);
        }

        let ingress = s.add_workload(Kind::Deployment, "platform", "ingress", 2);
        let collector = s.add_workload(Kind::Deployment, "platform", "collector", 1);
        let agent = s.add_workload(Kind::DaemonSet, "platform", "node-agent", 3);
        let web = s.add_workload(Kind::Deployment, "shop", "web", 2);
        let api = s.add_workload(Kind::Deployment, "shop", "api", 2);
        let cart = s.add_workload(Kind::Deployment, "shop", "cart", 1);
        let store_dot = s.add_workload(Kind::Deployment, "shop", "store.v1", 1);
        let store_dash = s.add_workload(Kind::Deployment, "shop", "store-v1", 1);
        let db = s.add_workload(Kind::StatefulSet, "shop", "db", 2);
        let recommender = s.add_workload(Kind::Deployment, "shop", "recommender", 1);
        let ledger = s.add_workload(Kind::Deployment, "payments", "ledger", 2);
        let gateway = s.add_workload(Kind::Deployment, "payments", "gateway", 1);
        let report = s.add_workload(Kind::Job, "batch", "report-28419360", 1);
        let poller = s.add_workload(Kind::Deployment, "legacy", "poller", 1);
        let mainframe = s.add_workload(Kind::Deployment, "legacy", "mainframe", 1);

        let db1 = s.workloads[db].pods[1];
        s.pods[db1].restarts = DB_RESTARTS.to_vec();

        let svc_ingress = s.add_service("platform", "ingress", 80, &[ingress]);
        let svc_collector = s.add_service("platform", "collector", 4318, &[collector]);
        let svc_web = s.add_service("shop", "web", 8080, &[web]);
        let svc_api = s.add_service("shop", "api", 8080, &[api]);
        let svc_cart = s.add_service("shop", "cart", 8080, &[cart]);
        let svc_store = s.add_service("shop", "store", 8080, &[store_dot, store_dash]);
        let svc_db = s.add_service("shop", "db", 5984, &[db]);
        let svc_recommender = s.add_service("shop", "recommender", 8080, &[recommender]);
        let svc_ledger = s.add_service("payments", "ledger", 9090, &[ledger]);
        let svc_gateway = s.add_service("payments", "gateway", 8080, &[gateway]);
        let svc_mainframe = s.add_service("legacy", "mainframe", 8080, &[mainframe]);
        // Headless Services for the pods called by IP: meshes that name services (Consul,
        // Kuma) register every pod under the Service selecting it. They carry no calls.
        s.add_service("platform", "node-agent", 9100, &[agent]);
        s.add_service("batch", "report", 9102, &[report]);

        let w = Caller::Workload;
        let svc = Target::Service;
        let ok = |n: u32| (Http(200), n);
        let grpc_mix = [
            (Grpc(0), 9000),
            (Grpc(5), 400),  // NotFound: success
            (Grpc(7), 100),  // PermissionDenied: success
            (Grpc(3), 60),   // InvalidArgument: success
            (Grpc(14), 200), // Unavailable: failure
            (Grpc(4), 150),  // DeadlineExceeded: failure
            (Grpc(13), 80),  // Internal: failure
            (Grpc(2), 30),   // Unknown: failure
            (Grpc(15), 5),   // DataLoss: failure
        ];

        let mut from_internet = call(
            Caller::Outside,
            svc(svc_ingress),
            40.0,
            &[ok(9700), (Http(404), 200), (Http(301), 60), (Http(503), 40)],
            lat(45.0, 0.5),
        );
        from_internet.authority = Some("shop.example.com".to_owned());
        let mut recommend = call(
            w(web),
            svc(svc_recommender),
            10.0,
            &[ok(990), (Http(500), 10)],
            lat(120.0, 0.4),
        );
        recommend.active_until = Some(RECOMMENDER_IDLE_AFTER);

        s.calls = vec![
            from_internet,
            call(
                w(ingress),
                svc(svc_web),
                38.0,
                &[ok(9800), (Http(304), 150), (Http(500), 50)],
                lat(35.0, 0.5),
            ),
            call(
                w(web),
                svc(svc_api),
                60.0,
                &[
                    ok(9300),
                    (Http(404), 400),
                    (Http(400), 100),
                    (Http(429), 100),
                    (Http(503), 100),
                ],
                lat(25.0, 0.5),
            ),
            recommend,
            call(
                w(api),
                svc(svc_cart),
                20.0,
                &[ok(990), (Http(409), 10)],
                lat(8.0, 0.5),
            ),
            call(
                w(api),
                svc(svc_store),
                25.0,
                &[ok(995), (Http(404), 5)],
                lat(15.0, 0.4),
            ),
            call(
                w(api),
                svc(svc_db),
                30.0,
                &[ok(900), (Http(201), 90), (Http(409), 10)],
                lat(4.0, 0.5),
            ),
            call(w(api), svc(svc_ledger), 30.0, &grpc_mix, lat(6.0, 0.45)),
            call(
                w(cart),
                svc(svc_db),
                10.0,
                &[ok(950), (Http(201), 50)],
                lat(3.0, 0.5),
            ),
            call(
                w(cart),
                svc(svc_gateway),
                8.0,
                &[
                    ok(800),
                    (Http(500), 60),
                    (Http(502), 40),
                    (Http(503), 50),
                    (Reset, 50),
                ],
                lat(40.0, 0.5),
            ),
            call(w(gateway), svc(svc_ledger), 12.0, &grpc_mix, lat(6.0, 0.45)),
            call(
                w(gateway),
                Target::External {
                    host: "rates.example.com".to_owned(),
                },
                3.0,
                &[ok(990), (Http(503), 10)],
                lat(250.0, 0.5),
            ),
            call(
                w(gateway),
                svc(svc_mainframe),
                4.0,
                &[ok(970), (Http(500), 30)],
                lat(400.0, 0.5),
            ),
            call(w(ledger), svc(svc_ledger), 10.0, &grpc_mix, lat(3.0, 0.5)),
            call(
                w(poller),
                svc(svc_api),
                5.0,
                &[ok(950), (Http(404), 50)],
                lat(25.0, 0.5),
            ),
            call(
                w(agent),
                svc(svc_collector),
                30.0,
                &[ok(998), (Http(503), 2)],
                lat(12.0, 0.5),
            ),
            call(
                w(collector),
                Target::PodIp {
                    workload: agent,
                    port: 9100,
                },
                15.0,
                &[ok(1000)],
                lat(5.0, 0.4),
            ),
            call(
                w(collector),
                Target::PodIp {
                    workload: report,
                    port: 9102,
                },
                5.0,
                &[ok(1000)],
                lat(2.0, 0.3),
            ),
            call(
                w(report),
                svc(svc_api),
                10.0,
                &[ok(980), (Http(404), 20)],
                lat(30.0, 0.5),
            ),
            call(w(report), svc(svc_ledger), 8.0, &grpc_mix, lat(8.0, 0.45)),
        ];
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_has_the_traps() {
        let s = Scenario::demo();
        let names: Vec<&str> = s.pods.iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"db-0") && names.contains(&"db-1"));
        assert!(names.iter().any(|n| n.starts_with("store.v1-")));
        assert!(names.iter().any(|n| n.starts_with("store-v1-")));
        assert!(names.iter().any(|n| n.starts_with("report-28419360-")));
        assert!(s.pods.iter().any(|p| !p.restarts.is_empty()));
        assert!(s.namespaces.iter().any(|n| !n.meshed));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
