//! Configuration: Kubernetes-style flags (also settable through `MESH_METRICS_*`
//! environment variables) over an optional YAML file given by `--config`.
//! Precedence: flag > environment > file > default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use adapters::duration;
use adapters::mesh::ScrapeLabels;
use adapters::osm::OsmStats;
use adapters::prometheus::PrometheusConfig;
use adapters::workloads::WorkloadKinds;
use apiservice::request::WindowLimits;
use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// Which meshes the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeshKind {
    /// Linkerd 2.10+ (linkerd-viz Prometheus).
    Linkerd,
    /// Istio 1.5+ telemetry v2 (`istio_requests_total`), sidecars and ambient waypoints.
    Istio,
    /// Consul service mesh (Envoy statistics with Consul's tags).
    Consul,
    /// Open Service Mesh (WASM statistics, or Envoy counters only: `osmStats`).
    Osm,
    /// Kuma / Kong Mesh (Envoy cluster statistics with Kuma's labels).
    Kuma,
    /// Cilium with Hubble HTTP metrics (`hubble_http_requests_total`, httpV2).
    Cilium,
}

impl MeshKind {
    /// The scrape label names the mesh's usual Prometheus setup adds.
    pub fn default_scrape_labels(self) -> ScrapeLabels {
        match self {
            MeshKind::Osm => adapters::osm::Osm::scrape_defaults(),
            _ => ScrapeLabels::default(),
        }
    }
}

/// How requests are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
pub enum AuthorizationMode {
    /// Serve every request (local use only).
    #[value(name = "AlwaysAllow")]
    AlwaysAllow,
    /// Ask the Kubernetes API (SubjectAccessReview); the in-cluster default.
    #[value(name = "Delegated")]
    Delegated,
}

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "mesh-metrics",
    version,
    about = "SMI Traffic Metrics API server (metrics.smi-spec.io/v1alpha1) for any service mesh",
    long_about = "Serves the SMI Traffic Metrics API over HTTPS as a Kubernetes aggregated API server, \
answering from each mesh's Prometheus.\n\nEvery flag can also be set in the YAML file given by --config \
(camelCase keys, e.g. securePort) or through an environment variable (MESH_METRICS_<FLAG>, e.g. \
MESH_METRICS_PROMETHEUS_URL). Flags win over the environment, which wins over the file.\n\n\
Example (local):\n  mesh-metrics --mesh linkerd --prometheus-url http://127.0.0.1:9090 \
--authorization-mode AlwaysAllow --secure-port 8443"
)]
pub struct Flags {
    /// YAML configuration file (see docs/configuration.md); flags override its values.
    #[arg(long, env = "MESH_METRICS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The mesh whose Prometheus series are read. Defines (or overrides) the single backend.
    #[arg(long, env = "MESH_METRICS_MESH", value_enum)]
    pub mesh: Option<MeshKind>,

    /// Base URL of the mesh's Prometheus (or Thanos, Mimir, VictoriaMetrics).
    #[arg(long, env = "MESH_METRICS_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,

    /// Timeout of one Prometheus query, as a Go duration [default: 10s].
    #[arg(long, env = "MESH_METRICS_PROMETHEUS_TIMEOUT", value_name = "DURATION", value_parser = duration::parse)]
    pub prometheus_timeout: Option<Duration>,

    /// IP address to listen on [default: 0.0.0.0].
    #[arg(long, env = "MESH_METRICS_BIND_ADDRESS", value_name = "ADDR")]
    pub bind_address: Option<IpAddr>,

    /// HTTPS port; 0 picks a free port [default: 8443].
    #[arg(long, env = "MESH_METRICS_SECURE_PORT", value_name = "PORT")]
    pub secure_port: Option<u16>,

    /// PEM serving certificate (chain). Without it, an in-memory self-signed certificate is generated.
    #[arg(long, env = "MESH_METRICS_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "MESH_METRICS_TLS_PRIVATE_KEY_FILE", value_name = "FILE")]
    pub tls_private_key_file: Option<PathBuf>,

    /// AlwaysAllow serves anyone (local use); Delegated asks the Kubernetes API [default: Delegated].
    #[arg(long, env = "MESH_METRICS_AUTHORIZATION_MODE", value_enum)]
    pub authorization_mode: Option<AuthorizationMode>,

    /// PEM CA bundle for client certificates: a certificate it signed authenticates as user
    /// CN with groups O. Without it, Delegated mode reads `client-ca-file` from ConfigMap
    /// kube-system/extension-apiserver-authentication. Re-read when the file changes.
    #[arg(long, env = "MESH_METRICS_CLIENT_CA_FILE", value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// PEM CA bundle that signs the front-proxy client certificate (kube-apiserver's
    /// --proxy-client-cert-file); only requests with such a certificate may carry identity
    /// headers. Without it, Delegated mode reads this and every other --requestheader-* setting
    /// from ConfigMap kube-system/extension-apiserver-authentication (watched for changes).
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_CLIENT_CA_FILE",
        value_name = "FILE"
    )]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names a front-proxy client certificate may have (comma list); empty: any
    /// certificate signed by the requestheader CA [default: empty].
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_ALLOWED_NAMES",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub requestheader_allowed_names: Option<Vec<String>>,

    /// Request headers holding the user name, first non-empty wins (comma list) [default: X-Remote-User].
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_USERNAME_HEADERS",
        value_name = "HEADERS",
        value_delimiter = ','
    )]
    pub requestheader_username_headers: Option<Vec<String>>,

    /// Request headers holding the user's UID (comma list) [default: X-Remote-Uid].
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_UID_HEADERS",
        value_name = "HEADERS",
        value_delimiter = ','
    )]
    pub requestheader_uid_headers: Option<Vec<String>>,

    /// Request headers holding the user's groups, one group per header line (comma list)
    /// [default: X-Remote-Group].
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_GROUP_HEADERS",
        value_name = "HEADERS",
        value_delimiter = ','
    )]
    pub requestheader_group_headers: Option<Vec<String>>,

    /// Prefixes of request headers holding extra user attributes; the rest of the header name,
    /// lower-cased and %-decoded, is the key (comma list) [default: X-Remote-Extra-].
    #[arg(
        long,
        env = "MESH_METRICS_REQUESTHEADER_EXTRA_HEADERS_PREFIX",
        value_name = "PREFIXES",
        value_delimiter = ','
    )]
    pub requestheader_extra_headers_prefix: Option<Vec<String>>,

    /// Serve requests that carry no credentials as user system:anonymous (group
    /// system:unauthenticated), still subject to authorization [default: false].
    #[arg(long, env = "MESH_METRICS_ANONYMOUS_AUTH", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: Option<bool>,

    /// How long TokenReview answers for bearer tokens are cached; 0 disables the cache [default: 10s].
    #[arg(long, env = "MESH_METRICS_AUTHENTICATION_TOKEN_WEBHOOK_CACHE_TTL", value_name = "DURATION", value_parser = duration::parse)]
    pub authentication_token_webhook_cache_ttl: Option<Duration>,

    /// Start even if ConfigMap kube-system/extension-apiserver-authentication cannot be read
    /// (keep trying in the background); otherwise that is fatal [default: false].
    #[arg(long, env = "MESH_METRICS_AUTHENTICATION_TOLERATE_LOOKUP_FAILURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub authentication_tolerate_lookup_failure: Option<bool>,

    /// How long "allowed" SubjectAccessReview answers are cached; 0 disables [default: 10s].
    #[arg(long, env = "MESH_METRICS_AUTHORIZATION_WEBHOOK_CACHE_AUTHORIZED_TTL", value_name = "DURATION", value_parser = duration::parse)]
    pub authorization_webhook_cache_authorized_ttl: Option<Duration>,

    /// How long "denied" SubjectAccessReview answers are cached; 0 disables [default: 10s].
    #[arg(long, env = "MESH_METRICS_AUTHORIZATION_WEBHOOK_CACHE_UNAUTHORIZED_TTL", value_name = "DURATION", value_parser = duration::parse)]
    pub authorization_webhook_cache_unauthorized_ttl: Option<Duration>,

    /// Non-resource paths served without authentication or authorization (comma list); a
    /// trailing `*` matches any suffix, e.g. `/openapi/*`. The health endpoints are always
    /// served [default: /healthz,/readyz,/livez].
    #[arg(
        long,
        env = "MESH_METRICS_AUTHORIZATION_ALWAYS_ALLOW_PATHS",
        value_name = "PATHS",
        value_delimiter = ','
    )]
    pub authorization_always_allow_paths: Option<Vec<String>>,

    /// Kubeconfig for reaching the Kubernetes API in Delegated mode. Without it: $KUBECONFIG,
    /// then ~/.kube/config, then the in-cluster service account.
    #[arg(long, env = "MESH_METRICS_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Window used when a request has no ?t= [default: 30s].
    #[arg(long, env = "MESH_METRICS_DEFAULT_WINDOW", value_name = "DURATION", value_parser = duration::parse)]
    pub default_window: Option<Duration>,

    /// Largest window a request may ask for with ?t= [default: 1h].
    #[arg(long, env = "MESH_METRICS_MAX_WINDOW", value_name = "DURATION", value_parser = duration::parse)]
    pub max_window: Option<Duration>,

    /// Queries are evaluated at the current time rounded down to a multiple of this;
    /// answers within one interval are identical and cached for it. Match it to the
    /// Prometheus scrape interval [default: 10s].
    #[arg(long, env = "MESH_METRICS_EVALUATION_INTERVAL", value_name = "DURATION", value_parser = duration::parse)]
    pub evaluation_interval: Option<Duration>,

    /// Memory bound of the Prometheus result cache in bytes; 0 disables caching [default: 67108864].
    #[arg(long, env = "MESH_METRICS_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub cache_max_bytes: Option<u64>,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive) [default: info].
    #[arg(long, env = "MESH_METRICS_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Serve the custom metrics API (custom.metrics.k8s.io, for the HPA) in these
    /// versions, comma-separated: v1beta2, v1beta1. Only one server per cluster can own
    /// each version, so it is off by default. Pod label selectors need Kubernetes API
    /// access (in-cluster or --kubeconfig).
    #[arg(long, env = "MESH_METRICS_CUSTOM_METRICS_VERSIONS", value_name = "VERSIONS", value_delimiter = ',', value_parser = custom_version)]
    pub custom_metrics_versions: Option<Vec<CustomVersion>>,
}

/// A version of the custom metrics API.
pub type CustomVersion = apiservice::custom_metrics::Version;

fn custom_version(s: &str) -> Result<CustomVersion, String> {
    match s.trim() {
        "v1beta2" => Ok(CustomVersion::V1Beta2),
        "v1beta1" => Ok(CustomVersion::V1Beta1),
        other => Err(format!(
            "{other:?} is not a custom metrics API version (v1beta2, v1beta1)"
        )),
    }
}

/// The YAML file's shape (camelCase keys, every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileConfig {
    bind_address: Option<IpAddr>,
    secure_port: Option<u16>,
    tls_cert_file: Option<PathBuf>,
    tls_private_key_file: Option<PathBuf>,
    authorization_mode: Option<AuthorizationMode>,
    client_ca_file: Option<PathBuf>,
    requestheader_client_ca_file: Option<PathBuf>,
    requestheader_allowed_names: Option<Vec<String>>,
    requestheader_username_headers: Option<Vec<String>>,
    requestheader_uid_headers: Option<Vec<String>>,
    requestheader_group_headers: Option<Vec<String>>,
    requestheader_extra_headers_prefix: Option<Vec<String>>,
    anonymous_auth: Option<bool>,
    #[serde(default, with = "opt_duration")]
    authentication_token_webhook_cache_ttl: Option<Duration>,
    authentication_tolerate_lookup_failure: Option<bool>,
    #[serde(default, with = "opt_duration")]
    authorization_webhook_cache_authorized_ttl: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    authorization_webhook_cache_unauthorized_ttl: Option<Duration>,
    authorization_always_allow_paths: Option<Vec<String>>,
    kubeconfig: Option<PathBuf>,
    #[serde(default, with = "opt_duration")]
    default_window: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    max_window: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    evaluation_interval: Option<Duration>,
    cache_max_bytes: Option<u64>,
    log_level: Option<String>,
    #[serde(default)]
    custom_metrics_versions: Vec<String>,
    #[serde(default)]
    backends: Vec<BackendConfig>,
}

mod opt_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| adapters::duration::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// One mesh backend: a mesh, its Prometheus, and the namespaces it serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendConfig {
    /// A name for logs and errors.
    #[serde(default = "default_backend_name")]
    pub name: String,
    /// The mesh.
    pub mesh: MeshKind,
    /// Its Prometheus.
    pub prometheus: PrometheusConfig,
    /// Namespaces it serves; empty means every namespace not claimed by another backend.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Names of the labels the scrape configuration adds; unset ones take the mesh's
    /// defaults ([`MeshKind::default_scrape_labels`]).
    #[serde(default = "ScrapeLabels::unset")]
    pub scrape_labels: ScrapeLabels,
    /// Istio, Cilium, Kuma: the kinds of workload names, which carry none.
    #[serde(default)]
    pub workload_kinds: WorkloadKinds,
    /// Consul: read only this datacenter's services.
    #[serde(default)]
    pub consul_datacenter: Option<String>,
    /// Kuma: read only this Kuma mesh (the `mesh` label).
    #[serde(default)]
    pub kuma_mesh: Option<String>,
    /// OSM: which statistics to read (`wasm`, the default, or `envoy`).
    #[serde(default)]
    pub osm_stats: OsmStats,
}

impl BackendConfig {
    /// A backend for `mesh` at `url` with every option at its default.
    pub fn new(mesh: MeshKind, url: String) -> Self {
        BackendConfig {
            name: default_backend_name(),
            mesh,
            prometheus: PrometheusConfig::with_url(url),
            namespaces: Vec::new(),
            scrape_labels: mesh.default_scrape_labels(),
            workload_kinds: WorkloadKinds::default(),
            consul_datacenter: None,
            kuma_mesh: None,
            osm_stats: OsmStats::default(),
        }
    }

    /// Fills unset scrape label names with the mesh's defaults.
    fn apply_mesh_defaults(&mut self) {
        self.scrape_labels = std::mem::replace(&mut self.scrape_labels, ScrapeLabels::unset())
            .or(&self.mesh.default_scrape_labels());
    }
}

fn default_backend_name() -> String {
    "default".into()
}

/// Which request headers carry a front-proxy identity (`--requestheader-*-headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderNames {
    /// User name headers; the first non-empty one wins.
    pub username: Vec<String>,
    /// UID headers; the first non-empty one wins.
    pub uid: Vec<String>,
    /// Group headers; every line of each is one group.
    pub group: Vec<String>,
    /// Prefixes of extra-attribute headers.
    pub extra_prefix: Vec<String>,
}

impl Default for RequestHeaderNames {
    /// kube-apiserver's names: `X-Remote-User`, `X-Remote-Uid`, `X-Remote-Group`, `X-Remote-Extra-`.
    fn default() -> Self {
        RequestHeaderNames {
            username: vec!["X-Remote-User".into()],
            uid: vec!["X-Remote-Uid".into()],
            group: vec!["X-Remote-Group".into()],
            extra_prefix: vec!["X-Remote-Extra-".into()],
        }
    }
}

/// Delegated authentication and authorization settings (used in `Delegated` mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `--client-ca-file`; `None`: from the ConfigMap.
    pub client_ca_file: Option<PathBuf>,
    /// `--requestheader-client-ca-file`; `None`: every requestheader setting from the ConfigMap.
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Allowed front-proxy certificate CNs; empty: any.
    pub requestheader_allowed_names: Vec<String>,
    /// Identity header names.
    pub requestheader_headers: RequestHeaderNames,
    /// Whether requests without credentials are served as `system:anonymous`.
    pub anonymous: bool,
    /// TokenReview cache lifetime (0: no cache).
    pub token_cache_ttl: Duration,
    /// Whether an unreadable ConfigMap at startup is tolerated.
    pub tolerate_lookup_failure: bool,
    /// Cache lifetime of allowed SubjectAccessReviews (0: no cache).
    pub authorized_ttl: Duration,
    /// Cache lifetime of denied SubjectAccessReviews (0: no cache).
    pub unauthorized_ttl: Duration,
    /// Non-resource paths needing no authentication or authorization.
    pub always_allow_paths: Vec<String>,
    /// Kubeconfig file; `None`: inferred.
    pub kubeconfig: Option<PathBuf>,
}

/// Drops empty entries (`--flag=` means an empty list) and surrounding blanks.
fn list(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub bind_address: IpAddr,
    /// Listen port (0 = any).
    pub secure_port: u16,
    /// Serving certificate and key files, or None for a generated self-signed pair.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Authorization mode.
    pub authorization_mode: AuthorizationMode,
    /// Delegated authentication and authorization settings.
    pub auth: AuthConfig,
    /// Window limits for `?t=`.
    pub windows: WindowLimits,
    /// Alignment of evaluation times (and the cache period).
    pub evaluation_interval: Duration,
    /// Cache memory bound in bytes (0 = no cache).
    pub cache_max_bytes: u64,
    /// Log filter.
    pub log_level: String,
    /// Served versions of custom.metrics.k8s.io (empty: off).
    pub custom_metrics_versions: Vec<CustomVersion>,
    /// The mesh backends.
    pub backends: Vec<BackendConfig>,
}

impl Config {
    /// Builds the effective configuration from flags (reading `--config` if given).
    pub fn from_flags(flags: Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                serde_yaml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut backends = file.backends;
        if flags.mesh.is_some()
            || flags.prometheus_url.is_some()
            || flags.prometheus_timeout.is_some()
        {
            match backends.len() {
                0 => {
                    let mesh = flags
                        .mesh
                        .ok_or("--prometheus-url needs --mesh (which mesh's series to read)")?;
                    let url = flags
                        .prometheus_url
                        .clone()
                        .ok_or("--mesh needs --prometheus-url (where that mesh's Prometheus is)")?;
                    backends.push(BackendConfig::new(mesh, url));
                }
                1 => {
                    let b = &mut backends[0];
                    if let Some(m) = flags.mesh {
                        b.mesh = m;
                    }
                    if let Some(u) = &flags.prometheus_url {
                        b.prometheus.url = u.clone();
                    }
                }
                n => {
                    return Err(format!(
                        "--mesh/--prometheus-url/--prometheus-timeout define a single backend, but the config file lists {n}; \
                         set them per backend in the file instead"
                    ))
                }
            }
            if let Some(t) = flags.prometheus_timeout {
                backends[0].prometheus.timeout = t;
            }
        }
        if backends.is_empty() {
            return Err("no backend configured: pass --mesh and --prometheus-url, or list backends in --config".into());
        }
        for b in &mut backends {
            b.apply_mesh_defaults();
        }

        let tls_files = match (
            flags.tls_cert_file.or(file.tls_cert_file),
            flags.tls_private_key_file.or(file.tls_private_key_file),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(
                    "--tls-cert-file and --tls-private-key-file must be given together".into(),
                )
            }
        };
        let limits = WindowLimits::default();
        let windows = WindowLimits {
            default: flags
                .default_window
                .or(file.default_window)
                .unwrap_or(limits.default),
            min: limits.min,
            max: flags.max_window.or(file.max_window).unwrap_or(limits.max),
        };
        let config = Config {
            bind_address: flags
                .bind_address
                .or(file.bind_address)
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            secure_port: flags.secure_port.or(file.secure_port).unwrap_or(8443),
            tls_files,
            authorization_mode: flags
                .authorization_mode
                .or(file.authorization_mode)
                .unwrap_or(AuthorizationMode::Delegated),
            auth: AuthConfig {
                client_ca_file: flags.client_ca_file.or(file.client_ca_file),
                requestheader_client_ca_file: flags
                    .requestheader_client_ca_file
                    .or(file.requestheader_client_ca_file),
                requestheader_allowed_names: list(
                    flags
                        .requestheader_allowed_names
                        .or(file.requestheader_allowed_names)
                        .unwrap_or_default(),
                ),
                requestheader_headers: {
                    let d = RequestHeaderNames::default();
                    RequestHeaderNames {
                        username: flags
                            .requestheader_username_headers
                            .or(file.requestheader_username_headers)
                            .map_or(d.username, list),
                        uid: flags
                            .requestheader_uid_headers
                            .or(file.requestheader_uid_headers)
                            .map_or(d.uid, list),
                        group: flags
                            .requestheader_group_headers
                            .or(file.requestheader_group_headers)
                            .map_or(d.group, list),
                        extra_prefix: flags
                            .requestheader_extra_headers_prefix
                            .or(file.requestheader_extra_headers_prefix)
                            .map_or(d.extra_prefix, list),
                    }
                },
                anonymous: flags
                    .anonymous_auth
                    .or(file.anonymous_auth)
                    .unwrap_or(false),
                token_cache_ttl: flags
                    .authentication_token_webhook_cache_ttl
                    .or(file.authentication_token_webhook_cache_ttl)
                    .unwrap_or(Duration::from_secs(10)),
                tolerate_lookup_failure: flags
                    .authentication_tolerate_lookup_failure
                    .or(file.authentication_tolerate_lookup_failure)
                    .unwrap_or(false),
                authorized_ttl: flags
                    .authorization_webhook_cache_authorized_ttl
                    .or(file.authorization_webhook_cache_authorized_ttl)
                    .unwrap_or(Duration::from_secs(10)),
                unauthorized_ttl: flags
                    .authorization_webhook_cache_unauthorized_ttl
                    .or(file.authorization_webhook_cache_unauthorized_ttl)
                    .unwrap_or(Duration::from_secs(10)),
                always_allow_paths: flags
                    .authorization_always_allow_paths
                    .or(file.authorization_always_allow_paths)
                    .map_or_else(
                        || vec!["/healthz".into(), "/readyz".into(), "/livez".into()],
                        list,
                    ),
                kubeconfig: flags.kubeconfig.or(file.kubeconfig),
            },
            windows,
            evaluation_interval: flags
                .evaluation_interval
                .or(file.evaluation_interval)
                .unwrap_or(Duration::from_secs(10)),
            cache_max_bytes: flags
                .cache_max_bytes
                .or(file.cache_max_bytes)
                .unwrap_or(64 << 20),
            log_level: flags
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            custom_metrics_versions: match flags.custom_metrics_versions {
                Some(v) => v,
                None => file
                    .custom_metrics_versions
                    .iter()
                    .map(|v| custom_version(v).map_err(|e| format!("customMetricsVersions: {e}")))
                    .collect::<Result<_, _>>()?,
            },
            backends,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let w = &self.windows;
        if w.default < w.min || w.default > w.max {
            return Err(format!(
                "--default-window {} must lie between {} and --max-window {}",
                duration::format(w.default),
                duration::format(w.min),
                duration::format(w.max)
            ));
        }
        if self.evaluation_interval < Duration::from_secs(1) {
            return Err("--evaluation-interval must be at least 1s".into());
        }
        for p in &self.auth.always_allow_paths {
            if p.strip_suffix('*').unwrap_or(p).contains('*') {
                return Err(format!(
                    "--authorization-always-allow-paths {p:?}: only a trailing * is allowed"
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for b in &self.backends {
            if !names.insert(&b.name) {
                return Err(format!("backend name {:?} is used twice", b.name));
            }
            for ns in &b.namespaces {
                apiservice::request::namespace_name(ns)
                    .map_err(|e| format!("backend {:?}: {}", b.name, e.message))?;
            }
        }
        if self
            .backends
            .iter()
            .filter(|b| b.namespaces.is_empty())
            .count()
            > 1
        {
            return Err("at most one backend may serve all namespaces (empty `namespaces`)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["mesh-metrics"];
        argv.extend_from_slice(args);
        Config::from_flags(Flags::try_parse_from(argv).map_err(|e| e.to_string())?)
    }

    #[test]
    fn flags_define_a_single_backend_with_defaults() {
        let c = parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "http://127.0.0.1:9090",
        ])
        .unwrap();
        assert_eq!(c.backends.len(), 1);
        assert_eq!(c.backends[0].prometheus.url, "http://127.0.0.1:9090");
        assert_eq!(c.secure_port, 8443);
        assert_eq!(c.authorization_mode, AuthorizationMode::Delegated);
        assert_eq!(c.windows.default, Duration::from_secs(30));
        assert!(c.tls_files.is_none());
    }

    #[test]
    fn incomplete_or_bad_flags_fail_with_a_reason() {
        assert!(parse(&[]).unwrap_err().contains("no backend configured"));
        assert!(parse(&["--mesh", "linkerd"])
            .unwrap_err()
            .contains("--prometheus-url"));
        assert!(parse(&["--mesh", "nope", "--prometheus-url", "x"]).is_err());
        assert!(parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "u",
            "--tls-cert-file",
            "c"
        ])
        .unwrap_err()
        .contains("together"));
        assert!(parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "u",
            "--max-window",
            "10s"
        ])
        .unwrap_err()
        .contains("--default-window"));
        assert!(parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "u",
            "--max-window",
            "ten"
        ])
        .is_err());
        assert!(parse(&["--config", "/nonexistent/file.yaml"])
            .unwrap_err()
            .contains("cannot read config file"));
    }

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "securePort: 9443\nmaxWindow: 2h\nauthorizationMode: AlwaysAllow\nbackends:\n- name: mesh\n  mesh: linkerd\n  prometheus:\n    url: http://file:9090\n    timeout: 3s\n  scrapeLabels: {{namespace: kubernetes_namespace}}"
        )
        .unwrap();
        let path = f.path().to_str().unwrap();
        let c = parse(&["--config", path]).unwrap();
        assert_eq!(c.secure_port, 9443);
        assert_eq!(c.windows.max, Duration::from_secs(7200));
        assert_eq!(c.authorization_mode, AuthorizationMode::AlwaysAllow);
        assert_eq!(c.backends[0].prometheus.timeout, Duration::from_secs(3));
        assert_eq!(
            c.backends[0].scrape_labels.namespace,
            "kubernetes_namespace"
        );
        assert_eq!(c.backends[0].scrape_labels.pod, "pod");
        let c = parse(&[
            "--config",
            path,
            "--secure-port",
            "1",
            "--prometheus-url",
            "http://flag:9090",
        ])
        .unwrap();
        assert_eq!(c.secure_port, 1);
        assert_eq!(c.backends[0].prometheus.url, "http://flag:9090");
    }

    #[test]
    fn auth_settings_default_like_kubernetes() {
        let c = parse(&["--mesh", "linkerd", "--prometheus-url", "u"]).unwrap();
        let a = &c.auth;
        assert_eq!(a.client_ca_file, None);
        assert_eq!(a.requestheader_client_ca_file, None);
        assert!(a.requestheader_allowed_names.is_empty());
        assert_eq!(a.requestheader_headers, RequestHeaderNames::default());
        assert_eq!(a.requestheader_headers.username, ["X-Remote-User"]);
        assert!(!a.anonymous);
        assert!(!a.tolerate_lookup_failure);
        assert_eq!(a.token_cache_ttl, Duration::from_secs(10));
        assert_eq!(a.authorized_ttl, Duration::from_secs(10));
        assert_eq!(a.unauthorized_ttl, Duration::from_secs(10));
        assert_eq!(a.always_allow_paths, ["/healthz", "/readyz", "/livez"]);
        assert_eq!(a.kubeconfig, None);
    }

    #[test]
    fn auth_flags_and_file_keys_apply() {
        let c = parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "u",
            "--requestheader-allowed-names",
            "front-proxy-client, aggregator",
            "--requestheader-group-headers",
            "X-Remote-Group,X-Groups",
            "--anonymous-auth",
            "--authentication-token-webhook-cache-ttl",
            "0",
            "--authorization-always-allow-paths=",
            "--kubeconfig",
            "/k",
        ])
        .unwrap();
        let a = &c.auth;
        assert_eq!(
            a.requestheader_allowed_names,
            ["front-proxy-client", "aggregator"]
        );
        assert_eq!(
            a.requestheader_headers.group,
            ["X-Remote-Group", "X-Groups"]
        );
        assert!(a.anonymous);
        assert_eq!(a.token_cache_ttl, Duration::ZERO);
        assert!(a.always_allow_paths.is_empty());
        assert_eq!(a.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
        assert!(
            !parse(&[
                "--mesh",
                "linkerd",
                "--prometheus-url",
                "u",
                "--anonymous-auth=false"
            ])
            .unwrap()
            .auth
            .anonymous
        );

        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "clientCaFile: /ca.crt\nrequestheaderClientCaFile: /fp.crt\nrequestheaderAllowedNames: [a]\n\
             requestheaderUsernameHeaders: [X-U]\nrequestheaderUidHeaders: [X-I]\nrequestheaderExtraHeadersPrefix: [X-E-]\n\
             anonymousAuth: true\nauthenticationTolerateLookupFailure: true\nauthorizationWebhookCacheAuthorizedTtl: 1m\n\
             authorizationWebhookCacheUnauthorizedTtl: 5s\nauthorizationAlwaysAllowPaths: [/openapi/*]\nkubeconfig: /kc\n\
             backends:\n- mesh: linkerd\n  prometheus: {{url: http://p}}"
        )
        .unwrap();
        let path = f.path().to_str().unwrap();
        let a = parse(&["--config", path]).unwrap().auth;
        assert_eq!(
            a.client_ca_file.as_deref(),
            Some(std::path::Path::new("/ca.crt"))
        );
        assert_eq!(
            a.requestheader_client_ca_file.as_deref(),
            Some(std::path::Path::new("/fp.crt"))
        );
        assert_eq!(a.requestheader_allowed_names, ["a"]);
        assert_eq!(a.requestheader_headers.username, ["X-U"]);
        assert_eq!(a.requestheader_headers.uid, ["X-I"]);
        assert_eq!(a.requestheader_headers.group, ["X-Remote-Group"]);
        assert_eq!(a.requestheader_headers.extra_prefix, ["X-E-"]);
        assert!(a.anonymous && a.tolerate_lookup_failure);
        assert_eq!(a.authorized_ttl, Duration::from_secs(60));
        assert_eq!(a.unauthorized_ttl, Duration::from_secs(5));
        assert_eq!(a.always_allow_paths, ["/openapi/*"]);
        assert_eq!(a.kubeconfig.as_deref(), Some(std::path::Path::new("/kc")));
        let a = parse(&[
            "--config",
            path,
            "--anonymous-auth=false",
            "--requestheader-allowed-names",
            "b",
        ])
        .unwrap()
        .auth;
        assert!(!a.anonymous);
        assert_eq!(a.requestheader_allowed_names, ["b"]);
    }

    #[test]
    fn help_documents_the_auth_flags() {
        let help = <Flags as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for flag in [
            "--client-ca-file",
            "--requestheader-client-ca-file",
            "--requestheader-allowed-names",
            "--requestheader-username-headers",
            "--requestheader-uid-headers",
            "--requestheader-group-headers",
            "--requestheader-extra-headers-prefix",
            "--anonymous-auth",
            "--authentication-token-webhook-cache-ttl",
            "--authentication-tolerate-lookup-failure",
            "--authorization-webhook-cache-authorized-ttl",
            "--authorization-webhook-cache-unauthorized-ttl",
            "--authorization-always-allow-paths",
            "--kubeconfig",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
        assert!(help.contains("extension-apiserver-authentication"));
    }

    #[test]
    fn always_allow_paths_take_only_a_trailing_star() {
        let err = parse(&[
            "--mesh",
            "linkerd",
            "--prometheus-url",
            "u",
            "--authorization-always-allow-paths",
            "/healthz,/a*/b",
        ])
        .unwrap_err();
        assert!(err.contains("/a*/b") && err.contains("trailing"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "securePrt: 1").unwrap();
        let err = parse(&["--config", f.path().to_str().unwrap()]).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
