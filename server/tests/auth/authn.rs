//! Who the server believes a caller is.

use kubestub::{user_info, Rule};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_proxy_identity_is_authorized_per_access_review() {
    let c = Cluster::start(&[]).await;
    c.stub.allow(
        Rule::user("alice")
            .verb("list")
            .resource("deployments")
            .namespace("shop"),
    );
    c.stub.deny(Rule::user("bob"), "bob is on leave");
    let fp = c.front_proxy();
    let url = c.url(&format!("{BASE}/namespaces/shop/deployments"));

    let (code, body) = get(fp
        .get(&url)
        .header("X-Remote-User", "alice")
        .header("X-Remote-Uid", "u-1")
        .header("X-Remote-Group", "dev")
        .header("X-Remote-Group", "system:authenticated")
        .header(
            "X-Remote-Extra-Authentication.kubernetes.io%2fPod-Name",
            "kubectl-0",
        )
        .header("X-Remote-Extra-Scopes", "a"))
    .await;
    assert_eq!(code, 503, "authorized, then Prometheus is down: {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach Prometheus"),
        "{body}"
    );
    let reviews = c.stub.access_reviews();
    assert_eq!(reviews.len(), 1);
    assert_eq!(
        serde_json::to_value(&reviews[0]).unwrap(),
        json!({
            "user": "alice",
            "uid": "u-1",
            "groups": ["dev", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["kubectl-0"], "scopes": ["a"]},
            "resourceAttributes": {
                "namespace": "shop", "verb": "list", "group": "metrics.smi-spec.io",
                "version": "v1alpha1", "resource": "deployments"
            }
        })
    );

    let (code, body) = get(fp.get(&url).header("X-Remote-User", "bob")).await;
    assert_status(&body, 403, "Forbidden");
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "deployments.metrics.smi-spec.io is forbidden: User \"bob\" cannot list resource \"deployments\" \
         in API group \"metrics.smi-spec.io\" in the namespace \"shop\": bob is on leave"
    );
    assert_eq!(
        body["details"],
        json!({"group": "metrics.smi-spec.io", "kind": "deployments"}),
        "details name the resource, as kube-apiserver's do"
    );

    // the front proxy's certificate alone, without a user header, is nobody
    let (code, body) = get(fp.get(&url)).await;
    assert_eq!(code, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_without_a_front_proxy_certificate_are_ignored() {
    let c = Cluster::start(&[]).await;
    c.stub.allow(Rule::any());
    let forged = |client: reqwest::Client| {
        client
            .get(c.url(BASE))
            .header("X-Remote-User", "system:kube-aggregator")
            .header("X-Remote-Group", "system:masters")
    };
    // no certificate at all: unauthenticated
    let (code, body) = get(forged(c.client(None))).await;
    assert_eq!(code, 401, "{body}");
    assert_status(&body, 401, "Unauthorized");
    // a cluster client certificate: the certificate's user, not the headers'
    let jane = c.client_ca.client("jane", &["dev"]);
    let (code, body) = get(forged(c.client(Some(&jane)))).await;
    assert_eq!(code, 200, "{body}");
    let reviews = c.stub.access_reviews();
    assert_eq!(
        reviews.len(),
        1,
        "system:masters from a header must not skip the review"
    );
    assert_eq!(reviews[0].user.as_deref(), Some("jane"));
    assert_eq!(
        reviews[0].groups.as_deref(),
        Some(&["dev".to_string(), "system:authenticated".to_string()][..])
    );
    // a cluster client certificate named like the front proxy is still just a client
    let lookalike = c.client_ca.client(FRONT_PROXY_CN, &[]);
    let (code, body) = get(forged(c.client(Some(&lookalike)))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        c.stub.access_reviews()[1].user.as_deref(),
        Some(FRONT_PROXY_CN)
    );
    // a bearer token: the token's user, not the headers'
    c.stub.add_token("t", user_info("tina", "", &[]));
    let (code, _) = get(forged(c.client(None)).bearer_auth("t")).await;
    assert_eq!(code, 200);
    assert_eq!(c.stub.access_reviews()[2].user.as_deref(), Some("tina"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_an_unknown_ca_are_rejected() {
    let c = Cluster::start(&["--anonymous-auth"]).await;
    c.stub.allow(Rule::any());
    let rogue = Ca::new("front-proxy-ca").client(FRONT_PROXY_CN, &["system:masters"]);
    let outcome = answer(
        c.client(Some(&rogue))
            .get(c.url(BASE))
            .header("X-Remote-User", "system:kube-aggregator")
            .header("X-Remote-Group", "system:masters"),
    )
    .await;
    if let Ok((code, body)) = outcome {
        panic!("a certificate from an unknown CA got past the handshake: {code} {body}");
    }
    assert!(c.stub.access_reviews().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_proxy_certificate_with_a_name_not_allowed_is_unauthorized() {
    let c = Cluster::start(&[]).await;
    c.stub.allow(Rule::any());
    let intruder = c.front_proxy_ca.client("intruder", &[]);
    let (code, body) = get(c
        .client(Some(&intruder))
        .get(c.url(BASE))
        .header("X-Remote-User", "alice"))
    .await;
    assert_eq!(code, 401, "{body}");
    assert_status(&body, 401, "Unauthorized");
    assert!(c.stub.access_reviews().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ca_client_certificate_user_is_cn_and_groups_are_o() {
    let c = Cluster::start(&[]).await;
    c.stub.allow(Rule::user("jane").group("ops").path(BASE));
    let jane = c.client(Some(&c.client_ca.client("jane", &["dev", "ops"])));
    let (code, body) = get(jane.get(c.url(BASE))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "APIResourceList");
    let review = serde_json::to_value(&c.stub.access_reviews()[0]).unwrap();
    assert_eq!(
        review,
        json!({
            "user": "jane",
            "groups": ["dev", "ops", "system:authenticated"],
            "nonResourceAttributes": {"path": BASE, "verb": "get"}
        })
    );
    let (code, _) = get(jane.get(c.url("/apis"))).await;
    assert_eq!(code, 403, "no rule allows /apis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_reviewed_and_cached() {
    let c = Cluster::start(&[]).await;
    c.stub
        .add_token("good", user_info("grafana", "g-1", &["viewers"]));
    c.stub.add_token("meh", user_info("intern", "", &[]));
    c.stub.allow(Rule::user("grafana"));
    let http = c.client(None);
    let url = c.url(BASE);

    for _ in 0..3 {
        let (code, body) = get(http.get(&url).bearer_auth("good")).await;
        assert_eq!(code, 200, "{body}");
    }
    let reviews = c.stub.token_reviews();
    assert_eq!(reviews.len(), 1, "one TokenReview for three requests");
    assert_eq!(reviews[0].token.as_deref(), Some("good"));
    assert_eq!(
        c.stub.access_reviews().len(),
        1,
        "one SubjectAccessReview for three requests"
    );
    let sar = &c.stub.access_reviews()[0];
    assert_eq!(sar.uid.as_deref(), Some("g-1"));
    assert_eq!(
        sar.groups.as_deref(),
        Some(&["viewers".to_string(), "system:authenticated".to_string()][..])
    );
    // the server calls the API with its own credentials from the kubeconfig
    let call = c
        .stub
        .requests()
        .into_iter()
        .find(|r| r.path == kubestub::TOKEN_REVIEWS)
        .unwrap();
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {}", kubestub::CLIENT_TOKEN).as_str())
    );

    let (code, body) = get(http.get(&url).bearer_auth("meh")).await;
    assert_eq!(code, 403, "authenticated but not allowed: {body}");
    for _ in 0..2 {
        let (code, body) = get(http.get(&url).bearer_auth("forged")).await;
        assert_eq!(code, 401, "{body}");
        assert_status(&body, 401, "Unauthorized");
    }
    let tokens: Vec<String> = c
        .stub
        .token_reviews()
        .into_iter()
        .filter_map(|r| r.token)
        .collect();
    assert_eq!(
        tokens,
        ["good", "meh", "forged"],
        "rejections are cached too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_get_401_but_health_paths_are_open() {
    let c = Cluster::start(&[
        "--authorization-always-allow-paths",
        "/healthz,/readyz,/livez,/apis",
    ])
    .await;
    let http = c.client(None);
    for path in [
        BASE.to_string(),
        format!("{BASE}/namespaces/shop/deployments"),
        "/apis/metrics.smi-spec.io".to_string(),
    ] {
        let (code, body) = get(http.get(c.url(&path))).await;
        assert_eq!(code, 401, "{path}: {body}");
        assert_status(&body, 401, "Unauthorized");
    }
    for path in [
        "/healthz",
        "/readyz",
        "/livez",
        "/readyz/ping",
        "/livez?verbose",
    ] {
        let (code, body) = get(http.get(c.url(path))).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (code, body) = get(http.get(c.url("/apis"))).await;
    assert_eq!(code, 200, "always-allowed path: {body}");
    assert!(
        c.stub.requests().iter().all(|r| r.method == "GET"),
        "no reviews were needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_reviewed_when_enabled() {
    let c = Cluster::start(&["--anonymous-auth=true"]).await;
    c.stub.allow(Rule::user("system:anonymous").path(BASE));
    let http = c.client(None);
    let (code, body) = get(http.get(c.url(BASE))).await;
    assert_eq!(code, 200, "{body}");
    let review = &c.stub.access_reviews()[0];
    assert_eq!(
        review.groups.as_deref(),
        Some(&["system:unauthenticated".to_string()][..]),
        "anonymous is not system:authenticated"
    );
    let (code, _) = get(http.get(c.url("/apis"))).await;
    assert_eq!(code, 403);
    // bad credentials are not downgraded to anonymous
    let (code, _) = get(http.get(c.url(BASE)).bearer_auth("nope")).await;
    assert_eq!(code, 401);
}
