//! Every error is a Kubernetes `Status` (`kind: Status`) with a reason, a code and
//! a message that says what to fix. kubectl prints it as
//! `Error from server (<Reason>): <message>`.

use adapters::engine::CollectError;
use adapters::mesh::PlanError;
use adapters::prometheus::QueryError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusDetails};

use crate::GROUP;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes `reason` (`NotFound`, `BadRequest`, ...).
    pub reason: &'static str,
    /// Human-readable message: what went wrong and what to do.
    pub message: String,
    /// Seconds after which a retry may succeed (503s).
    pub retry_after: Option<i32>,
    /// What the error is about, as kube-apiserver names it in `details` (403s).
    pub subject: Option<Box<Subject>>,
}

/// The object an error is about: `details.group`, `details.kind` (the resource, as
/// kube-apiserver writes it for a 403) and `details.name`; all empty for a path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// API group (`""` for the core group).
    pub group: String,
    /// The resource (`trafficmetrics`, `pods`, ...).
    pub kind: String,
    /// The object's name, if the request named one.
    pub name: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            retry_after: None,
            subject: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "Unauthorized", message)
    }

    /// 403 Forbidden about `subject` (its `details`, as kube-apiserver sends them).
    pub fn forbidden(message: impl Into<String>, subject: Subject) -> Self {
        ApiError {
            subject: Some(Box::new(subject)),
            ..Self::new(403, "Forbidden", message)
        }
    }

    /// 404 NotFound.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }

    /// 405 MethodNotAllowed for a method other than GET/HEAD.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow method {method} on this resource: {GROUP} is read-only, use GET"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 503 ServiceUnavailable, retryable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(5),
            ..Self::new(503, "ServiceUnavailable", message)
        }
    }

    /// 504 Timeout, retryable.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(5),
            ..Self::new(504, "Timeout", message)
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code)),
            details: (self.retry_after.is_some() || self.subject.is_some()).then(|| {
                let subject = self.subject.as_deref().cloned().unwrap_or_default();
                let given = |v: String| (!v.is_empty()).then_some(v);
                StatusDetails {
                    retry_after_seconds: self.retry_after,
                    group: given(subject.group),
                    kind: given(subject.kind),
                    name: given(subject.name),
                    ..Default::default()
                }
            }),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: Some(self.reason.to_string()),
            status: Some("Failure".into()),
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_status()).unwrap_or_default()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match &e {
            QueryError::Timeout { .. } => ApiError::timeout(e.to_string()),
            QueryError::Rejected { error_type, .. } if error_type == "timeout" => {
                ApiError::timeout(e.to_string())
            }
            QueryError::Rejected { error_type, .. }
                if error_type == "bad_data" || error_type == "execution" =>
            {
                ApiError::internal(format!(
                    "{e} (the server built a query Prometheus rejected; please report this)"
                ))
            }
            _ => ApiError::unavailable(e.to_string()),
        }
    }
}

impl From<CollectError> for ApiError {
    fn from(e: CollectError) -> Self {
        match e {
            CollectError::Plan(
                p @ (PlanError::UnsupportedKind { .. } | PlanError::UnsupportedEdges { .. }),
            ) => ApiError::not_found(p.to_string()),
            CollectError::Query(q) => q.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_has_the_kubernetes_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::not_found("x not found").to_json()).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NotFound");
        assert_eq!(v["code"], 404);
        assert_eq!(v["message"], "x not found");
        assert!(v["metadata"].is_object());
    }

    #[test]
    fn prometheus_failures_map_to_503_and_504() {
        let url = "http://p".to_string();
        let unreachable = QueryError::Unreachable {
            url: url.clone(),
            detail: "refused".into(),
        };
        let e = ApiError::from(unreachable);
        assert_eq!((e.code, e.reason), (503, "ServiceUnavailable"));
        assert!(e.message.contains("http://p"));
        let t = ApiError::from(QueryError::Timeout {
            url: url.clone(),
            timeout: std::time::Duration::from_secs(1),
        });
        assert_eq!((t.code, t.reason), (504, "Timeout"));
        let bad = ApiError::from(QueryError::Rejected {
            url,
            status: 400,
            error_type: "bad_data".into(),
            message: "parse error".into(),
        });
        assert_eq!(bad.code, 500);
    }
}
