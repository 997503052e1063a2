//! When the Kubernetes API cannot help, answers say what to check.

use std::time::Duration;

use kubestub::{user_info, KubeStub, Rule};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_down_gives_a_clear_503() {
    let c = Cluster::start(&[]).await;
    c.stub.add_token("t", user_info("ann", "", &[]));
    c.stub.allow(Rule::any());
    let api = c.stub.url();
    c.stub.stop().await;

    let resp = c
        .client(None)
        .get(c.url(BASE))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_status(&body, 503, "ServiceUnavailable");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("cannot reach the Kubernetes API at {api}/")),
        "{msg}"
    );
    assert!(msg.contains("TokenReview"), "{msg}");

    let fp = c.front_proxy();
    let (code, body) = get(fp.get(c.url(BASE)).header("X-Remote-User", "alice")).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("SubjectAccessReview"),
        "{body}"
    );

    // what needs no review still works: system:masters, health
    let (code, _) = get(fp
        .get(c.url(BASE))
        .header("X-Remote-User", "system:kube-aggregator")
        .header("X-Remote-Group", "system:masters"))
    .await;
    assert_eq!(code, 200);
    assert_eq!(get(c.client(None).get(c.url("/readyz"))).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_rbac_gives_a_500_that_names_the_role() {
    let c = Cluster::start(&[]).await;
    c.stub.fail_with(Some(403));
    let (code, body) = get(c
        .front_proxy()
        .get(c.url(BASE))
        .header("X-Remote-User", "alice"))
    .await;
    assert_eq!(code, 500, "{body}");
    assert_status(&body, 500, "InternalError");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("system:auth-delegator") && msg.contains("403"),
        "{msg}"
    );
    let (code, body) = get(c.client(None).get(c.url(BASE)).bearer_auth("t")).await;
    assert_eq!(code, 500, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("system:auth-delegator"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_needs_the_configmap_unless_told_otherwise() {
    let stub = KubeStub::start().await;
    let (client_ca, fp_ca) = (Ca::new("kubernetes"), Ca::new("front-proxy-ca"));
    stub.put(&auth_configmap(&client_ca, &fp_ca, &[FRONT_PROXY_CN]));
    stub.allow(Rule::any());
    stub.fail_with(Some(403));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write(dir.path(), "kubeconfig", &stub.kubeconfig());
    let kc = kubeconfig.to_str().unwrap();

    let err = start(&["--kubeconfig", kc])
        .await
        .err()
        .expect("start fails");
    assert!(
        err.contains("extension-apiserver-authentication-reader"),
        "{err}"
    );
    assert!(
        err.contains("--authentication-tolerate-lookup-failure"),
        "{err}"
    );

    let server = start(&[
        "--kubeconfig",
        kc,
        "--authentication-tolerate-lookup-failure",
    ])
    .await
    .expect("starts when told to tolerate it");
    stub.fail_with(None);
    let fp = client(server.cert_pem(), Some(&fp_ca.client(FRONT_PROXY_CN, &[])));
    let url = format!("https://localhost:{}{BASE}", server.local_addr().port());
    let served = eventually(Duration::from_secs(15), || {
        let req = fp.get(&url).header("X-Remote-User", "alice");
        async move { matches!(answer(req).await, Ok((200, _))) }
    })
    .await;
    assert!(served, "the ConfigMap was read once the API allowed it");
    server.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_mode_needs_a_usable_kubeconfig() {
    let err = start(&["--kubeconfig", "/nonexistent/kubeconfig"])
        .await
        .err()
        .expect("start fails");
    assert!(
        err.contains("--kubeconfig /nonexistent/kubeconfig"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_needs_no_kubernetes_api() {
    let server = start(&[
        "--authorization-mode",
        "AlwaysAllow",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ])
    .await
    .expect("AlwaysAllow does not touch the Kubernetes API");
    let url = format!("https://localhost:{}{BASE}", server.local_addr().port());
    let (code, body) = get(client(server.cert_pem(), None)
        .get(&url)
        .header("X-Remote-User", "x"))
    .await;
    assert_eq!(code, 200, "{body}");
    server.shutdown(Duration::from_millis(100)).await;
}
