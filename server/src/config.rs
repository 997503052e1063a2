//! Configuration: Kubernetes-style flags (also settable through `MESH_METRICS_*`
//! environment variables) over an optional YAML file given by `--config`.
//! Precedence: flag > environment > file > default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use adapters::duration;
use adapters::mesh::ScrapeLabels;
use adapters::prometheus::PrometheusConfig;
use apiservice::request::WindowLimits;
use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// Which meshes the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeshKind {
    /// Linkerd 2.10+ (linkerd-viz Prometheus).
    Linkerd,
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
    #[serde(default, with = "opt_duration")]
    default_window: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    max_window: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    evaluation_interval: Option<Duration>,
    cache_max_bytes: Option<u64>,
    log_level: Option<String>,
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
    /// Names of the labels the scrape configuration adds.
    #[serde(default)]
    pub scrape_labels: ScrapeLabels,
}

fn default_backend_name() -> String {
    "default".into()
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
    /// Window limits for `?t=`.
    pub windows: WindowLimits,
    /// Alignment of evaluation times (and the cache period).
    pub evaluation_interval: Duration,
    /// Cache memory bound in bytes (0 = no cache).
    pub cache_max_bytes: u64,
    /// Log filter.
    pub log_level: String,
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
                    backends.push(BackendConfig {
                        name: default_backend_name(),
                        mesh,
                        prometheus: PrometheusConfig::with_url(url),
                        namespaces: Vec::new(),
                        scrape_labels: ScrapeLabels::default(),
                    });
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
    fn unknown_file_keys_are_rejected() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "securePrt: 1").unwrap();
        let err = parse(&["--config", f.path().to_str().unwrap()]).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
