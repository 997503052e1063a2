//! Loads the demo dataset into a real Prometheus and checks that plain PromQL over the Linkerd
//! series reproduces the independently computed truth. Fails (does not skip) without Prometheus.

use std::time::{SystemTime, UNIX_EPOCH};

use meshsim::{Dataset, Direction, Expected, Kind, Mesh, PromServer, Res, Scenario, STEP_SECS};

/// Linkerd label matchers selecting a resource's own series (scrape labels).
fn own(r: &Res) -> String {
    let ns = r.namespace.as_deref().unwrap_or(&r.name);
    let kind_label = match r.kind {
        Kind::Namespace => return format!(r#"namespace="{ns}""#),
        Kind::Pod => "pod",
        Kind::Deployment => "deployment",
        Kind::DaemonSet => "daemonset",
        Kind::StatefulSet => "statefulset",
        Kind::Job => "k8s_job",
        Kind::Service => unreachable!("Linkerd's truth lists no services"),
    };
    format!(r#"namespace="{ns}",{kind_label}="{}""#, r.name)
}

/// Linkerd label matchers selecting outbound series towards a resource.
fn dst(r: &Res) -> String {
    own(r)
        .split(',')
        .map(|m| format!("dst_{m}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn window(secs: i64) -> String {
    format!("{secs}s")
}

/// The single value of an instant query (0 when the result is empty).
fn value(prom: &PromServer, promql: &str, at: i64) -> f64 {
    let result = prom.query(promql, at).unwrap();
    assert!(result.len() <= 1, "{promql}: {result:?}");
    result.first().map_or(0.0, |s| s.value)
}

/// Checks counts and quantiles of one selector against the expected values.
fn check(prom: &PromServer, what: &str, selector: &str, at: i64, w: i64, want: &Expected) {
    let count = |extra: &str| {
        value(
            prom,
            &format!(
                "sum(increase(response_total{{{selector}{extra}}}[{}]))",
                window(w)
            ),
            at,
        )
    };
    let (total, ok, bad) = (
        count(""),
        count(r#",classification="success""#),
        count(r#",classification="failure""#),
    );
    let context = format!("{what} at {at} over {w}s: {selector}");
    assert_eq!(
        total,
        (want.success + want.failure) as f64,
        "total of {context}"
    );
    assert_eq!(ok, want.success as f64, "success of {context}");
    assert_eq!(bad, want.failure as f64, "failure of {context}");
    for (i, q) in [0.5, 0.9, 0.99].into_iter().enumerate() {
        let promql = format!(
            "histogram_quantile({q}, sum by (le) (rate(response_latency_ms_bucket{{{selector}}}[{}])))",
            window(w)
        );
        let result = prom.query(&promql, at).unwrap();
        let got = result.first().map(|s| s.value).filter(|v| !v.is_nan());
        match (got, want.latency_ms) {
            (None, None) => {}
            (Some(got), Some(want)) => {
                assert!(
                    (got - want[i]).abs() < 1e-6,
                    "p{q} of {context}: {got} vs {}",
                    want[i]
                );
            }
            (got, want) => panic!("p{q} of {context}: {got:?} vs {want:?}"),
        }
    }
}

#[test]
fn prometheus_reproduces_the_truth() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now / STEP_SECS * STEP_SECS - 1800;
    let ds = Dataset::generate(&Scenario::demo(), start, start + 1800);
    let prom = PromServer::start(&ds, Mesh::Linkerd).expect("Prometheus must be available");
    assert!(prom.url().starts_with("http://127.0.0.1:"));
    let truth = ds.truth(Mesh::Linkerd);

    // The idle workload stops after 5 minutes; db-1 restarts 17.5 minutes in (inside the 5m window).
    for at in [start + 300, start + 1200] {
        for w in [30, 60, 300] {
            let kinds = [
                Kind::Namespace,
                Kind::Pod,
                Kind::Deployment,
                Kind::DaemonSet,
                Kind::StatefulSet,
                Kind::Job,
            ];
            let resources: Vec<(Res, Expected)> = kinds
                .into_iter()
                .flat_map(|k| truth.list(k, None, at, w))
                .collect();
            assert!(resources.len() > 30);
            for (r, want) in &resources {
                let inbound = format!(r#"direction="inbound",{}"#, own(r));
                check(&prom, "resource", &inbound, at, w, want);
            }
            // Edges of a few resources, through the outbound series of the caller (a StatefulSet
            // pod with a restart, a DaemonSet pod, a Deployment with a self edge, namespaces).
            let pod = |prefix: &str| {
                let pods = truth.list(Kind::Pod, None, at, w);
                pods.into_iter()
                    .map(|(r, _)| r)
                    .find(|r| r.name.starts_with(prefix))
                    .unwrap()
            };
            for r in [
                Res::new(Kind::Deployment, "shop", "api"),
                Res::new(Kind::Deployment, "payments", "ledger"),
                pod("db-1"),
                pod("node-agent-"),
                Res::namespace("shop"),
                Res::namespace("platform"),
            ] {
                let edges = truth.edges(&r, at, w);
                assert!(!edges.is_empty(), "{r:?}");
                for e in edges {
                    let (from, to) = match e.direction {
                        Direction::To => (&r, &e.peer),
                        Direction::From => (&e.peer, &r),
                    };
                    let selector = format!(r#"direction="outbound",{},{}"#, own(from), dst(to));
                    check(&prom, "edge", &selector, at, w, &e.expected);
                }
            }
        }
    }

    // `store.v1` must not match `store-v1` (exact label match gives different numbers).
    let at = start + 600;
    let dot = truth.resource(&Res::new(Kind::Deployment, "shop", "store.v1"), at, 300);
    let dash = truth.resource(&Res::new(Kind::Deployment, "shop", "store-v1"), at, 300);
    assert_ne!(dot, dash);
    let regex = value(
        &prom,
        r#"sum(increase(response_total{direction="inbound",namespace="shop",deployment=~"store.v1"}[5m]))"#,
        at,
    );
    assert_eq!(
        regex,
        (dot.success + dot.failure + dash.success + dash.failure) as f64
    );

    // The histogram `le` labels are exported the way the proxy writes them.
    let les = prom
        .query(
            r#"count by (le) (response_latency_ms_bucket{namespace="shop",deployment="web",direction="inbound"})"#,
            at,
        )
        .unwrap();
    let mut les: Vec<String> = les.into_iter().map(|s| s.labels["le"].clone()).collect();
    les.sort();
    assert!(
        les.contains(&"1".to_owned())
            && les.contains(&"+Inf".to_owned())
            && les.contains(&"50000".to_owned())
    );
    assert_eq!(les.len(), 26);
}
