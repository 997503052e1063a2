//! Test support: certificates made with rcgen, the stand-in Kubernetes API
//! (kubestub) with the ConfigMap kube-apiserver publishes, and the real server
//! started in-process from flags, reached over real TLS.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubestub::KubeStub;
use mesh_metrics::config::{Config, Flags};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use serde_json::Value;

/// The SMI API base path.
pub const BASE: &str = "/apis/metrics.smi-spec.io/v1alpha1";
/// The front proxy's certificate name in the ConfigMap's allowed names.
pub const FRONT_PROXY_CN: &str = "front-proxy-client";

/// A certificate authority.
pub struct Ca {
    /// Its certificate (PEM).
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Pair {
    /// Certificate.
    pub cert: String,
    /// Private key.
    pub key: String,
}

impl Pair {
    /// As a reqwest client identity.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }
}

impl Ca {
    /// A new self-signed CA.
    pub fn new(name: &str) -> Ca {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(p, key),
        }
    }

    /// A client certificate with this CN and (at most two) organizations.
    pub fn client(&self, cn: &str, orgs: &[&str]) -> Pair {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        // rcgen keeps one value per attribute type: a second O goes in under its OID
        let types = [
            DnType::OrganizationName,
            DnType::CustomDnType(vec![2, 5, 4, 10]),
        ];
        for (t, o) in types.into_iter().zip(orgs) {
            p.distinguished_name.push(t, *o);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    /// A serving certificate for localhost.
    pub fn server(&self) -> Pair {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    fn sign(&self, p: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        Pair {
            cert: p.signed_by(&key, &self.issuer).unwrap().pem(),
            key: key.serialize_pem(),
        }
    }
}

/// ConfigMap kube-system/extension-apiserver-authentication as kubeadm's
/// kube-apiserver writes it.
pub fn auth_configmap(client_ca: &Ca, front_proxy_ca: &Ca, allowed: &[&str]) -> ConfigMap {
    let list = |v: &[&str]| serde_json::to_string(v).unwrap();
    ConfigMap {
        metadata: ObjectMeta {
            namespace: Some("kube-system".into()),
            name: Some("extension-apiserver-authentication".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                ("client-ca-file", client_ca.pem.clone()),
                ("requestheader-client-ca-file", front_proxy_ca.pem.clone()),
                ("requestheader-allowed-names", list(allowed)),
                ("requestheader-username-headers", list(&["X-Remote-User"])),
                ("requestheader-uid-headers", list(&["X-Remote-Uid"])),
                ("requestheader-group-headers", list(&["X-Remote-Group"])),
                (
                    "requestheader-extra-headers-prefix",
                    list(&["X-Remote-Extra-"]),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ),
        ..ConfigMap::default()
    }
}

/// Starts the server with `--mesh linkerd`, Prometheus on a closed port, loopback
/// and a free port, plus `args`.
pub async fn start(args: &[&str]) -> Result<mesh_metrics::Server, String> {
    let mut argv = vec![
        "mesh-metrics",
        "--mesh",
        "linkerd",
        "--prometheus-url",
        "http://127.0.0.1:1",
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        "0",
    ];
    argv.extend_from_slice(args);
    let flags = Flags::try_parse_from(argv).map_err(|e| e.to_string())?;
    let config = Config::from_flags(flags)?;
    mesh_metrics::start(&config, Duration::from_millis(200)).await
}

/// A stand-in Kubernetes API publishing the ConfigMap, the CAs it names, and
/// a server using them.
pub struct Cluster {
    /// The stand-in for kube-apiserver.
    pub stub: KubeStub,
    /// The cluster's client CA.
    pub client_ca: Ca,
    /// The front-proxy CA.
    pub front_proxy_ca: Ca,
    /// The server under test.
    pub server: mesh_metrics::Server,
    /// Keeps the kubeconfig until the cluster is dropped.
    _files: tempfile::TempDir,
}

impl Cluster {
    /// A cluster whose ConfigMap allows front-proxy CN [`FRONT_PROXY_CN`],
    /// and a server started with `args` (plus `--kubeconfig`).
    pub async fn start(args: &[&str]) -> Cluster {
        let stub = KubeStub::start().await;
        let (client_ca, front_proxy_ca) = (Ca::new("kubernetes"), Ca::new("front-proxy-ca"));
        stub.put(&auth_configmap(
            &client_ca,
            &front_proxy_ca,
            &[FRONT_PROXY_CN],
        ));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write(dir.path(), "kubeconfig", &stub.kubeconfig());
        let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        all.extend_from_slice(args);
        let server = start(&all).await.expect("server starts");
        Cluster {
            stub,
            client_ca,
            front_proxy_ca,
            server,
            _files: dir,
        }
    }

    /// An HTTPS client trusting the server, presenting `identity` if given.
    pub fn client(&self, identity: Option<&Pair>) -> reqwest::Client {
        client(self.server.cert_pem(), identity)
    }

    /// A client presenting the front proxy's certificate.
    pub fn front_proxy(&self) -> reqwest::Client {
        self.client(Some(&self.front_proxy_ca.client(FRONT_PROXY_CN, &[])))
    }

    /// `https://localhost:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.server.local_addr().port()
        )
    }
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An HTTPS client trusting `ca_pem` only, presenting `identity` if given.
pub fn client(ca_pem: &str, identity: Option<&Pair>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30));
    if let Some(id) = identity {
        b = b.identity(id.identity());
    }
    b.build().unwrap()
}

/// The answer to a request: status code and body (JSON, or a JSON string).
pub async fn answer(req: reqwest::RequestBuilder) -> Result<(u16, Value), reqwest::Error> {
    let resp = req.send().await?;
    let code = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Like [`answer`], panicking if the request fails.
pub async fn get(req: reqwest::RequestBuilder) -> (u16, Value) {
    answer(req).await.expect("request completes")
}

/// Asserts a `Status` body.
pub fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

/// Retries `check` every 100 ms until it returns true, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
