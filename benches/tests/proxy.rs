//! The zero-work proxy (`mesh_metrics_bench::proxy`) against a real Prometheus holding a
//! promtool-backfilled 10-workload Linkerd mesh: for each request it must send exactly the
//! server's plan (counted by Prometheus itself), answer the fixed body, ask nothing for
//! discovery, reject what the server rejects, and say when Prometheus is gone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use mesh_metrics_bench::plans::Question;
use mesh_metrics_bench::proxy::{self, ProxyTo};
use mesh_metrics_bench::{dataset, prom};
use meshsim::Scenario;

/// Waits (at most 5 s) until Prometheus has counted `want` answered queries, then returns
/// the count it settles on: its counter is updated as each handler returns, just after
/// the proxy has read the answer.
async fn answered(prometheus: &prom::Prometheus, want: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = prometheus.queries_answered().await?;
        if n >= want || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return prometheus.queries_answered().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_sends_the_servers_plan_and_answers_its_body() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = Scenario::scaled(10, 20);
    let end = chrono::Utc::now().timestamp().div_euclid(10) * 10;
    let om = dir.path().join("data.om");
    dataset::write_scaled(&scenario, end - 30, end, &om, |_, _| {})?;
    let tsdb = dir.path().join("tsdb");
    prom::backfill(&om, &tsdb, Duration::from_secs(120))?;
    let prometheus = prom::Prometheus::start(&tsdb, dir.path()).await?;

    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let (cert, key): (PathBuf, PathBuf) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, ck.cert.pem())?;
    std::fs::write(&key, ck.signing_key.serialize_pem())?;
    let body = Bytes::from_static(br#"{"kind":"TrafficMetricsList","items":[]}"#);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let to = ProxyTo {
        prometheus: prometheus.url(),
        default_window: Duration::from_secs(1800),
        evaluation_interval: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
    };
    let serving = {
        let (cert, key, body) = (cert.clone(), key.clone(), body.clone());
        tokio::spawn(async move { proxy::serve(listener, &cert, &key, body, to).await })
    };
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&cert)?)?)
        .timeout(Duration::from_secs(30))
        .build()?;
    let get = |path: String| {
        let client = client.clone();
        async move {
            let resp = client
                .get(format!("https://localhost:{port}{path}"))
                .send()
                .await?;
            Ok::<_, reqwest::Error>((resp.status().as_u16(), resp.bytes().await?))
        }
    };

    let (namespace, name) = scenario.workload_names()[0].clone();
    let questions = [Question::Edges { namespace, name }, Question::NamespaceList];
    let mut count = prometheus.queries_answered().await?;
    for q in &questions {
        let (status, answer) = get(format!("{}?t=1790s", q.path())).await?;
        assert_eq!(
            status,
            200,
            "{}: {}",
            q.path(),
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(answer, body);
        let plan = q.ours(Duration::from_secs(1790)).len() as u64;
        assert_eq!(plan, 2);
        let now = answered(&prometheus, count + plan).await?;
        assert_eq!(
            now - count,
            plan,
            "{}: one query per planned query",
            q.path()
        );
        count = now;
    }

    // discovery (the load generator's warm-up) asks Prometheus nothing
    let (status, answer) = get(apiservice::BASE_PATH.to_string()).await?;
    assert_eq!((status, answer), (200, body.clone()));
    // an unknown resource is the server's 400, before any query
    let (status, answer) = get(format!("{}/namespaces/a/bogus", apiservice::BASE_PATH)).await?;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(answered(&prometheus, count).await?, count);

    // without Prometheus the proxy says so
    drop(prometheus);
    let (status, answer) = get(format!("{}?t=1795s", questions[0].path())).await?;
    assert_eq!(status, 502);
    assert!(
        String::from_utf8_lossy(&answer).contains("Prometheus unreachable"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    serving.abort();
    Ok(())
}
