//! Several backends behind one server: routing by namespace across real Prometheus
//! instances holding different meshes' data, cluster-wide lists merged, kinds one
//! backend cannot report, and every way of authenticating to a Prometheus — TLS with a
//! private CA, client certificates and basic auth against a real Prometheus
//! (`--web.config.file`), a bearer token and a tenant header through a loopback gateway.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use e2e::{
    backend_yaml, env_for, kind, prometheus, start_with_config, timestamp, TestServer, BASE,
};
use meshsim::{Expected, Kind, Mesh, PromServer, Res, View, WebConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::smi::assert_list;

/// The cluster-wide answer two backends owe: each one's items in its own namespaces.
fn merged(parts: &[(View, &[&str])], kind: Kind, at: i64, w: i64) -> Vec<(Res, Expected)> {
    let mut items: Vec<(Res, Expected)> = parts
        .iter()
        .flat_map(|(view, namespaces)| {
            env_for(*view)
                .dataset
                .truth(*view)
                .list(kind, None, at, w)
                .into_iter()
                .filter(|(r, _)| namespaces.contains(&r.namespace.as_deref().unwrap_or(&r.name)))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

async fn list(s: &TestServer, path: &str) -> (i64, Value) {
    let (code, _, body) = s.get(path).await;
    assert_eq!(code, 200, "{path}: {body}");
    let at = body["items"]
        .as_array()
        .unwrap()
        .first()
        .map_or(0, timestamp);
    (at, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_route_to_their_backends_and_lists_merge() {
    let yaml = format!(
        "authorizationMode: AlwaysAllow\nbackends:\n{}{}{}",
        backend_yaml(
            View::Linkerd,
            "linkerd",
            &prometheus(Mesh::Linkerd).url(),
            &["shop", "platform"]
        ),
        backend_yaml(
            View::Istio,
            "istio",
            &prometheus(Mesh::Istio).url(),
            &["payments", "batch"]
        ),
        backend_yaml(View::Consul, "consul", &prometheus(Mesh::Consul).url(), &[]),
    );
    let s = start_with_config(&yaml, &[]);
    let parts: [(View, &[&str]); 2] = [
        (View::Linkerd, &["shop", "platform"]),
        (View::Istio, &["payments", "batch"]),
    ];
    for (view, namespaces) in parts {
        let truth = env_for(view).dataset.truth(view);
        for ns in namespaces {
            let path = format!("{BASE}/namespaces/{ns}/deployments?t=5m");
            let (at, body) = list(&s, &path).await;
            assert_list(
                &body,
                &truth.list(Kind::Deployment, Some(ns), at, 300),
                &path,
            );
        }
        let r = Res::new(
            Kind::Deployment,
            namespaces[0],
            if view == View::Linkerd {
                "api"
            } else {
                "ledger"
            },
        );
        let path = format!("{}/edges?t=1m", e2e::object_path(&r));
        let (code, _, edges) = s.get(&path).await;
        assert_eq!(code, 200, "{edges}");
        let at = timestamp(&edges["items"][0]);
        crate::smi::assert_edges(&edges, &r, &truth.edges(&r, at, 60), &path);
    }
    // cluster-wide lists: each backend's items in its namespaces, merged and sorted
    for k in [Kind::Namespace, Kind::Deployment, Kind::Job, Kind::Pod] {
        let path = format!("{BASE}/{}?t=1m", kind(k).plural());
        let (at, body) = list(&s, &path).await;
        let expected = merged(&parts, k, at, 60);
        assert!(!expected.is_empty(), "{path}");
        assert_list(&body, &expected, &path);
    }
    // Istio names the CronJob's Job `report`, Linkerd would say report-28419360
    let (_, jobs) = list(&s, &format!("{BASE}/jobs?t=1m")).await;
    assert_eq!(jobs["items"][0]["resource"]["name"], "report");

    // discovery is the union of the backends' kinds: the Consul catch-all brings services
    let (_, _, disco) = s.get(BASE).await;
    let names: Vec<&str> = disco["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"services") && names.contains(&"deployments"),
        "{names:?}"
    );
    // ... but shop belongs to Linkerd, which has no services
    let (code, _, body) = s.get(&format!("{BASE}/namespaces/shop/services")).await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("linkerd"),
        "{body}"
    );
    // the catch-all's services in claimed namespaces are not listed cluster-wide
    let (_, body) = list(&s, &format!("{BASE}/services")).await;
    assert_eq!(body["items"], serde_json::json!([]));
    // a namespace only the catch-all serves, with no traffic
    let (_, body) = list(&s, &format!("{BASE}/namespaces/legacy/services")).await;
    assert_eq!(body["items"], serde_json::json!([]));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "e2e prometheus CA");
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(
            dir.path().join("ca.crt"),
            ca.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let sign = |name: &str, params: CertificateParams| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        };
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        sign("server", server);
        let mut client = CertificateParams::default();
        client
            .distinguished_name
            .push(DnType::CommonName, "mesh-metrics");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        sign("client", client);
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

/// bcrypt of `PASSWORD` (cost 10), made once with Python's `crypt.crypt(PASSWORD,
/// crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024))`; Prometheus accepts `$2b$` hashes.
const PASSWORD_BCRYPT: &str = "$2b$10$6Dj94eB2L2n6miI.YxeZN.67mtKWrL7ylKXHgH8xDHiA3VCgmjurK";
const PASSWORD: &str = "mesh-metrics-e2e";

/// A server with one Linkerd backend reaching `url` with these `prometheus:` settings.
fn secured_server(url: &str, settings: &str) -> TestServer {
    start_with_config(
        &format!(
            "authorizationMode: AlwaysAllow\nbackends:\n- name: secured\n  mesh: linkerd\n  prometheus:\n    url: {url}\n    timeout: 5s\n{settings}"
        ),
        &[],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_behind_tls_client_certificates_and_basic_auth() {
    let pki = Pki::new();
    let web = WebConfig {
        yaml: format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\nbasic_auth_users:\n  mesh-metrics: {PASSWORD_BCRYPT}\n",
            pki.path("server.crt"),
            pki.path("server.key"),
            pki.path("ca.crt")
        ),
        tls: true,
    };
    let prom: PromServer = prometheus(Mesh::Linkerd)
        .replica(&web)
        .expect("secured Prometheus starts");
    assert!(prom.url().starts_with("https://127.0.0.1:"));
    let password = pki.dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let wrong = pki.dir.path().join("wrong");
    std::fs::write(&wrong, "guess").unwrap();
    let tls = format!(
        "    caFile: {}\n    certFile: {}\n    keyFile: {}\n",
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key")
    );
    let auth = |file: &Path| {
        format!(
            "    basicAuth: {{username: mesh-metrics, passwordFile: {}}}\n",
            file.display()
        )
    };

    let s = secured_server(&prom.url(), &format!("{tls}{}", auth(&password)));
    let truth = env_for(View::Linkerd).dataset.truth(View::Linkerd);
    let path = format!("{BASE}/namespaces/shop/deployments?t=1m");
    let (at, body) = list(&s, &path).await;
    assert_list(
        &body,
        &truth.list(Kind::Deployment, Some("shop"), at, 60),
        &path,
    );

    // each credential is needed: a wrong password, no client certificate, no CA
    let refused = [
        (format!("{tls}{}", auth(&wrong)), "http 401"),
        (
            format!("    caFile: {}\n{}", pki.path("ca.crt"), auth(&password)),
            "cannot reach",
        ),
        (auth(&password), "cannot reach"),
    ];
    for (settings, why) in refused {
        let s = secured_server(&prom.url(), &settings);
        let (code, _, body) = s.get(&path).await;
        assert_eq!(code, 503, "{settings}: {body}");
        let message = body["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains(why), "{settings}: {message}");
    }
}

/// A tenant gateway on loopback, like Mimir's or prom-label-proxy's front: a request must
/// carry `Authorization: Bearer <token>`; `X-Scope-OrgID` picks the tenant's Prometheus.
struct Gateway {
    addr: std::net::SocketAddr,
    token: Arc<Mutex<String>>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Gateway {
    async fn start(tenants: HashMap<String, String>, token: &str) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = Arc::new(Mutex::new(token.to_string()));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (t, s, tenants) = (token.clone(), seen.clone(), Arc::new(tenants));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (t, s, tenants) = (t.clone(), s.clone(), tenants.clone());
                tokio::spawn(async move {
                    let _ = forward(conn, &t, &s, &tenants).await;
                });
            }
        });
        Gateway { addr, token, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves one request: checks it, relays it to the tenant's Prometheus, relays the answer.
async fn forward(
    mut conn: tokio::net::TcpStream,
    token: &Mutex<String>,
    seen: &Mutex<HashMap<String, usize>>,
    tenants: &HashMap<String, String>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let expected = format!("Bearer {}", token.lock().unwrap());
    let tenant = header("x-scope-orgid").and_then(|t| tenants.get(&t).map(|u| (t, u.clone())));
    let Some((tenant, upstream)) = tenant.filter(|_| header("authorization") == Some(expected))
    else {
        let body = r#"{"status":"error","errorType":"unauthorized","error":"401 Unauthorized: bad token or tenant"}"#;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(resp.as_bytes()).await;
    };
    *seen.lock().unwrap().entry(tenant).or_default() += 1;
    let mut up = tokio::net::TcpStream::connect(&upstream).await?;
    let mut out = format!("{request_line}\r\nHost: {upstream}\r\nConnection: close\r\n");
    for (k, v) in &headers {
        if k != "host" && k != "connection" {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    up.write_all(out.as_bytes()).await?;
    up.write_all(&buf[head_end..]).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    conn.write_all(&answer).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_and_tenant_header_reach_a_gateway() {
    let tenants = HashMap::from([
        (
            "linkerd".to_string(),
            prometheus(Mesh::Linkerd)
                .url()
                .trim_start_matches("http://")
                .to_string(),
        ),
        (
            "kuma".to_string(),
            prometheus(Mesh::Kuma)
                .url()
                .trim_start_matches("http://")
                .to_string(),
        ),
    ]);
    let gw = Gateway::start(tenants, "first-token").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token\n").unwrap();
    let prom = |tenant: &str| {
        format!(
            "{{url: \"{}\", bearerTokenFile: \"{}\", headers: {{X-Scope-OrgID: {tenant}}}}}",
            gw.url(),
            token_file.display()
        )
    };
    let yaml = format!(
        "authorizationMode: AlwaysAllow\nbackends:\n\
         - name: linkerd-tenant\n  mesh: linkerd\n  namespaces: [shop]\n  prometheus: {}\n\
         - name: kuma-tenant\n  mesh: kuma\n  namespaces: [payments]\n  prometheus: {}\n",
        prom("linkerd"),
        prom("kuma")
    );
    let s = start_with_config(&yaml, &[]);
    let check = |view: View, path: String| {
        let s = &s;
        async move {
            let (at, body) = list(s, &path).await;
            let (kind, ns) = if view == View::Linkerd {
                (Kind::Deployment, "shop")
            } else {
                (Kind::Service, "payments")
            };
            let expected = env_for(view)
                .dataset
                .truth(view)
                .list(kind, Some(ns), at, 60);
            assert!(!expected.is_empty());
            assert_list(&body, &expected, &path);
        }
    };
    check(
        View::Linkerd,
        format!("{BASE}/namespaces/shop/deployments?t=1m"),
    )
    .await;
    check(
        View::Kuma,
        format!("{BASE}/namespaces/payments/services?t=1m"),
    )
    .await;
    {
        let seen = gw.seen.lock().unwrap();
        assert!(seen["linkerd"] > 0 && seen["kuma"] > 0, "{seen:?}");
    }

    // The gateway rotates the token: refused until the file has the new one (re-read per request).
    *gw.token.lock().unwrap() = "second-token".into();
    let path = format!("{BASE}/namespaces/shop/deployments?t=5m");
    let (code, _, body) = s.get(&path).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains("401"), "{body}");
    std::fs::write(&token_file, "second-token").unwrap();
    let (code, _, body) = s.get(&path).await;
    assert_eq!(code, 200, "{body}");
}
