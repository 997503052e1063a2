//! The authorization step every API request passes (health probes are answered
//! before it): `AlwaysAllow` serves everyone; `Delegated` authenticates the
//! caller and asks the Kubernetes API (see [`crate::auth`]).

use std::future::Future;
use std::sync::Arc;

use apiservice::status::ApiError;
use axum::extract::Request;

use crate::auth::{Delegated, RequestFacts};

/// Decides whether a request may be served.
#[derive(Clone)]
pub enum Authorizer {
    /// Serve every request (local use only).
    AlwaysAllow,
    /// Delegated authentication and SubjectAccessReview.
    Delegated(Arc<Delegated>),
}

impl Authorizer {
    /// `Ok` when the request may proceed, else the `Status` to answer with
    /// (401, 403, or 503/500 when the Kubernetes API cannot answer). What the
    /// check needs is taken from `req` before the returned future runs.
    pub fn authorize(
        &self,
        req: &Request,
    ) -> impl Future<Output = Result<(), ApiError>> + Send + 'static {
        let delegated = match self {
            Authorizer::AlwaysAllow => None,
            Authorizer::Delegated(d) => Some((d.clone(), RequestFacts::of(req))),
        };
        async move {
            match delegated {
                None => Ok(()),
                Some((d, facts)) => d.authorize(&facts).await,
            }
        }
    }
}
