//! Delegated authentication and authorization, end to end: the real server
//! (`mesh_metrics::start`, configured from flags) over real TLS, with client
//! certificates made by rcgen, talking through the `kube` client to
//! [`kubestub`] — a stand-in for kube-apiserver, which cannot run here. The
//! stand-in publishes ConfigMap kube-system/extension-apiserver-authentication,
//! answers TokenReviews and SubjectAccessReviews by rules each test sets, and
//! records every request, so tests assert exactly what the server asked.
//!
//! No Prometheus is needed: it is configured on a closed port, so a request
//! that passes authorization either gets a static discovery answer (200) or a
//! 503 saying Prometheus cannot be reached.

mod authn;
mod authz;
mod failures;
mod reload;
mod support;
