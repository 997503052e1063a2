//! The Kubernetes API as Delegated mode uses it: the client (from `--kubeconfig`,
//! else `$KUBECONFIG` or `~/.kube/config`, else the in-cluster service account),
//! bounded calls with a few quick retries, and failures turned into `Status`
//! answers that tell the operator what to check.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use apiservice::status::ApiError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// How long one review (all attempts together) may take, as in k8s.io/apiserver.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts for transient failures (connection errors, 429, 5xx).
const ATTEMPTS: u32 = 3;
/// The first pause between attempts; each following one is three times longer.
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// What a call to the Kubernetes API was for; chooses the advice in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST tokenreviews` (authenticating a bearer token).
    TokenReview,
    /// `POST subjectaccessreviews` (authorizing a request).
    AccessReview,
    /// Reading ConfigMap kube-system/extension-apiserver-authentication.
    ConfigMap,
}

impl Purpose {
    fn doing(self) -> &'static str {
        match self {
            Purpose::TokenReview => "review a bearer token (TokenReview)",
            Purpose::AccessReview => "authorize a request (SubjectAccessReview)",
            Purpose::ConfigMap => "read ConfigMap kube-system/extension-apiserver-authentication",
        }
    }

    fn rbac(self) -> &'static str {
        match self {
            Purpose::TokenReview | Purpose::AccessReview => {
                "the server's ServiceAccount needs a ClusterRoleBinding to ClusterRole system:auth-delegator"
            }
            Purpose::ConfigMap => {
                "the server's ServiceAccount needs a RoleBinding in namespace kube-system to Role \
                 extension-apiserver-authentication-reader"
            }
        }
    }
}

/// A client for the Kubernetes API and the URL it talks to.
#[derive(Clone)]
pub struct Kube {
    /// The client.
    pub client: Client,
    url: String,
}

impl Kube {
    /// Builds the client from `kubeconfig`, or else infers the configuration.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Kube, String> {
        let mut config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
            }
            None => Config::infer().await.map_err(|e| {
                format!(
                    "Delegated authorization needs the Kubernetes API, but no configuration was found ({e}); \
                     run in a cluster, pass --kubeconfig, or use --authorization-mode AlwaysAllow for local use"
                )
            })?,
        };
        // our own bounded retries instead of kube's long default policy
        config.default_retry = false;
        config.connect_timeout = Some(TIMEOUT);
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .map_err(|e| format!("cannot build a Kubernetes API client for {url}: {e}"))?;
        Ok(Kube { client, url })
    }

    /// The API server URL (for messages).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `call` with the time limit and retries; a failure becomes a `Status`.
    pub async fn call<T, F, Fut>(&self, purpose: Purpose, call: F) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut pause = FIRST_RETRY;
        let mut attempt = 1;
        loop {
            let failure = match tokio::time::timeout_at(deadline, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            let retry = failure.as_ref().is_some_and(transient)
                && attempt < ATTEMPTS
                && tokio::time::Instant::now() + pause < deadline;
            if !retry {
                return Err(self.error(purpose, failure.as_ref()));
            }
            tokio::time::sleep(pause).await;
            pause *= 3;
            attempt += 1;
        }
    }

    /// The `Status` for a failed call (`None`: it timed out).
    pub fn error(&self, purpose: Purpose, failure: Option<&kube::Error>) -> ApiError {
        let (doing, url) = (purpose.doing(), &self.url);
        match failure {
            None => ApiError::unavailable(format!(
                "the Kubernetes API at {url} did not answer within {}s when asked to {doing}; \
                 check the API server's health and load",
                TIMEOUT.as_secs()
            )),
            Some(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => ApiError::internal(format!(
                "the Kubernetes API at {url} refused to {doing} ({} {}: {}); {}",
                s.code,
                s.reason,
                s.message,
                purpose.rbac()
            )),
            Some(kube::Error::Api(s)) if s.code == 429 || s.code >= 500 => {
                ApiError::unavailable(format!(
                    "the Kubernetes API at {url} failed to {doing} ({} {}: {}); try again later",
                    s.code, s.reason, s.message
                ))
            }
            Some(kube::Error::Api(s)) => ApiError::internal(format!(
                "the Kubernetes API at {url} gave an unexpected answer when asked to {doing} ({} {}: {})",
                s.code, s.reason, s.message
            )),
            Some(e) if transient(e) => ApiError::unavailable(format!(
                "cannot reach the Kubernetes API at {url} to {doing}: {}; check that the API server is up \
                 and reachable from this pod (network policies, proxies)",
                chain(e)
            )),
            Some(e) => ApiError::internal(format!(
                "talking to the Kubernetes API at {url} to {doing} failed: {}",
                chain(e)
            )),
        }
    }
}

/// Connection failures, throttling and server errors are worth another try.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An error with its sources ("a: b: c").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let err = Kube::connect(Some(Path::new("/nonexistent/kubeconfig")))
            .await
            .err()
            .unwrap();
        assert!(
            err.contains("--kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn failures_say_what_to_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
             users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n",
        )
        .unwrap();
        let kube = Kube::connect(Some(&path)).await.unwrap();
        assert_eq!(kube.url(), "http://127.0.0.1:1/");
        let status = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("no", "Forbidden")
                    .with_code(code)
                    .boxed(),
            )
        };
        let e = kube.error(Purpose::AccessReview, Some(&status(403)));
        assert_eq!(e.code, 500);
        assert!(e.message.contains("system:auth-delegator"), "{}", e.message);
        let e = kube.error(Purpose::ConfigMap, Some(&status(403)));
        assert!(
            e.message
                .contains("extension-apiserver-authentication-reader"),
            "{}",
            e.message
        );
        assert_eq!(
            kube.error(Purpose::TokenReview, Some(&status(503))).code,
            503
        );
        assert_eq!(
            kube.error(Purpose::TokenReview, Some(&status(404))).code,
            500
        );
        assert_eq!(kube.error(Purpose::TokenReview, None).code, 503);

        // nothing listens on port 1: every attempt fails fast, then a 503 names the URL
        let started = std::time::Instant::now();
        let e = kube
            .call(Purpose::TokenReview, || async {
                kube.client
                    .request_text(http::Request::get("/version").body(Vec::new()).unwrap())
                    .await
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, 503, "{}", e.message);
        assert!(
            e.message
                .contains("cannot reach the Kubernetes API at http://127.0.0.1:1/"),
            "{}",
            e.message
        );
        assert!(started.elapsed() >= FIRST_RETRY * 4, "retried with pauses");
    }
}
