//! Certificates and CAs change without a restart.

use std::time::Duration;

use kubestub::{KubeStub, Rule};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_ca_rotation_is_picked_up_without_restart() {
    let c = Cluster::start(&[]).await;
    c.stub.allow(Rule::any());
    let alice = |client: &reqwest::Client| client.get(c.url(BASE)).header("X-Remote-User", "alice");
    let old = c.front_proxy();
    assert_eq!(get(alice(&old)).await.0, 200);

    let rotated = Ca::new("front-proxy-ca-2");
    let new_cert = rotated.client("aggregator", &[]);
    assert!(
        answer(alice(&c.client(Some(&new_cert)))).await.is_err(),
        "not trusted yet: refused at the handshake"
    );
    c.stub.put(&auth_configmap(
        &c.client_ca,
        &rotated,
        &[FRONT_PROXY_CN, "aggregator"],
    ));
    let picked_up = eventually(LIMIT, || async {
        matches!(
            answer(alice(&c.client(Some(&new_cert)))).await,
            Ok((200, _))
        )
    })
    .await;
    assert!(
        picked_up,
        "the new front-proxy CA and allowed name were not picked up"
    );
    // the old certificate (its name still allowed), on a connection opened before the
    // rotation, is checked against the new CA per request
    let (code, body) = get(alice(&old)).await;
    assert_eq!(code, 401, "{body}");
    // and a new connection with it is refused
    assert!(answer(alice(&c.front_proxy())).await.is_err());
    let watches = c
        .stub
        .requests()
        .into_iter()
        .filter(|r| {
            r.path == "/api/v1/namespaces/kube-system/configmaps"
                && r.query.as_deref().unwrap_or("").contains("watch=true")
        })
        .count();
    assert!(watches >= 1, "the ConfigMap is watched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_files_are_reloaded_when_they_change() {
    let stub = KubeStub::start().await;
    stub.allow(Rule::any());
    let dir = tempfile::tempdir().unwrap();
    let (client_ca, fp_ca) = (Ca::new("clients-1"), Ca::new("front-proxy-1"));
    let kubeconfig = write(dir.path(), "kubeconfig", &stub.kubeconfig());
    let client_ca_file = write(dir.path(), "client-ca.crt", &client_ca.pem);
    let fp_ca_file = write(dir.path(), "front-proxy-ca.crt", &fp_ca.pem);
    let server = start(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--client-ca-file",
        client_ca_file.to_str().unwrap(),
        "--requestheader-client-ca-file",
        fp_ca_file.to_str().unwrap(),
        "--requestheader-allowed-names",
        "proxy",
        "--requestheader-username-headers",
        "X-User",
    ])
    .await
    .unwrap();
    assert!(
        stub.requests()
            .iter()
            .all(|r| !r.path.contains("configmaps")),
        "with both CA files given the ConfigMap is not needed"
    );
    let url = format!("https://localhost:{}{BASE}", server.local_addr().port());
    let served = |pair: Pair, user: Option<&'static str>| {
        let http = client(server.cert_pem(), Some(&pair));
        let mut req = http.get(&url);
        if let Some(u) = user {
            req = req.header("X-User", u);
        }
        async move { matches!(answer(req).await, Ok((200, _))) }
    };
    assert!(served(client_ca.client("jane", &[]), None).await);
    assert!(served(fp_ca.client("proxy", &[]), Some("alice")).await);

    let (client_ca2, fp_ca2) = (Ca::new("clients-2"), Ca::new("front-proxy-2"));
    std::fs::write(&client_ca_file, &client_ca2.pem).unwrap();
    std::fs::write(&fp_ca_file, format!("{}{}", fp_ca.pem, fp_ca2.pem)).unwrap();
    let reloaded = eventually(LIMIT, || served(client_ca2.client("jane", &[]), None)).await;
    assert!(reloaded, "new client CA not picked up");
    assert!(
        served(fp_ca2.client("proxy", &[]), Some("alice")).await,
        "front-proxy CA bundle reloaded"
    );
    assert!(
        served(fp_ca.client("proxy", &[]), Some("alice")).await,
        "both CAs of the bundle trusted"
    );
    assert!(
        !served(client_ca.client("jane", &[]), None).await,
        "the old client CA is gone"
    );
    let users: Vec<_> = stub
        .access_reviews()
        .into_iter()
        .filter_map(|r| r.user)
        .collect();
    assert!(
        users.contains(&"alice".to_string()) && users.contains(&"jane".to_string()),
        "{users:?}"
    );
    server.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_certificate_is_hot_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (Ca::new("serving-1"), Ca::new("serving-2"));
    let first = ca1.server();
    let crt = write(dir.path(), "tls.crt", &first.cert);
    let key = write(dir.path(), "tls.key", &first.key);
    let server = start(&[
        "--authorization-mode",
        "AlwaysAllow",
        "--tls-cert-file",
        crt.to_str().unwrap(),
        "--tls-private-key-file",
        key.to_str().unwrap(),
    ])
    .await
    .unwrap();
    let url = format!("https://localhost:{}{BASE}", server.local_addr().port());
    let trusted_by = |ca: &Ca| {
        let req = client(&ca.pem, None).get(&url);
        async move { matches!(answer(req).await, Ok((200, _))) }
    };
    assert!(trusted_by(&ca1).await);
    assert!(!trusted_by(&ca2).await);

    let second = ca2.server();
    // a half-written rotation (new certificate, old key) keeps the old pair in force
    std::fs::write(&crt, &second.cert).unwrap();
    tokio::time::sleep(mesh_metrics::reload::POLL_INTERVAL * 2).await;
    assert!(trusted_by(&ca1).await, "a mismatched pair is not served");
    std::fs::write(&key, &second.key).unwrap();
    assert!(
        eventually(LIMIT, || trusted_by(&ca2)).await,
        "the new certificate is not served"
    );
    assert!(!trusted_by(&ca1).await);
    server.shutdown(Duration::from_millis(100)).await;
}
