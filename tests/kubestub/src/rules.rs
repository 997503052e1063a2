//! What the stand-in answers to TokenReviews and SubjectAccessReviews: tokens map
//! to users, and an ordered list of rules decides each access review (the first
//! rule that matches wins; none matching means "no opinion", i.e. not allowed).

use k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec;

/// A pattern over SubjectAccessReview specs. Every field left `None` matches
/// anything; every field set must equal the review's value (`group` must be one
/// of the review's groups). Resource fields only match resource reviews, `path`
/// only non-resource ones; `verb` matches either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// `spec.user`.
    pub user: Option<String>,
    /// One of `spec.groups`.
    pub group: Option<String>,
    /// The verb (resource or non-resource).
    pub verb: Option<String>,
    /// `resourceAttributes.group` (the API group).
    pub api_group: Option<String>,
    /// `resourceAttributes.resource`.
    pub resource: Option<String>,
    /// `resourceAttributes.subresource` (`""` for none).
    pub subresource: Option<String>,
    /// `resourceAttributes.namespace` (`""` for cluster scope).
    pub namespace: Option<String>,
    /// `resourceAttributes.name` (`""` for none).
    pub name: Option<String>,
    /// `nonResourceAttributes.path`.
    pub path: Option<String>,
}

impl Rule {
    /// A rule matching every review.
    pub fn any() -> Rule {
        Rule::default()
    }

    /// A rule matching reviews for user `name`.
    pub fn user(name: &str) -> Rule {
        Rule::any().with_user(name)
    }

    /// Also requires `spec.user == name`.
    pub fn with_user(mut self, name: &str) -> Rule {
        self.user = Some(name.into());
        self
    }

    /// Also requires `group` among `spec.groups`.
    pub fn group(mut self, group: &str) -> Rule {
        self.group = Some(group.into());
        self
    }

    /// Also requires this verb.
    pub fn verb(mut self, verb: &str) -> Rule {
        self.verb = Some(verb.into());
        self
    }

    /// Also requires this API group.
    pub fn api_group(mut self, group: &str) -> Rule {
        self.api_group = Some(group.into());
        self
    }

    /// Also requires this resource.
    pub fn resource(mut self, resource: &str) -> Rule {
        self.resource = Some(resource.into());
        self
    }

    /// Also requires this subresource.
    pub fn subresource(mut self, subresource: &str) -> Rule {
        self.subresource = Some(subresource.into());
        self
    }

    /// Also requires this namespace.
    pub fn namespace(mut self, namespace: &str) -> Rule {
        self.namespace = Some(namespace.into());
        self
    }

    /// Also requires this object name.
    pub fn name(mut self, name: &str) -> Rule {
        self.name = Some(name.into());
        self
    }

    /// Also requires this non-resource path.
    pub fn path(mut self, path: &str) -> Rule {
        self.path = Some(path.into());
        self
    }

    /// Whether `spec` matches.
    pub fn matches(&self, spec: &SubjectAccessReviewSpec) -> bool {
        fn eq(want: &Option<String>, got: Option<&String>) -> bool {
            want.as_ref()
                .is_none_or(|w| w == got.map(String::as_str).unwrap_or(""))
        }
        if !eq(&self.user, spec.user.as_ref()) {
            return false;
        }
        if let Some(g) = &self.group {
            if !spec.groups.iter().flatten().any(|x| x == g) {
                return false;
            }
        }
        match (&spec.resource_attributes, &spec.non_resource_attributes) {
            (Some(r), _) => {
                self.path.is_none()
                    && eq(&self.verb, r.verb.as_ref())
                    && eq(&self.api_group, r.group.as_ref())
                    && eq(&self.resource, r.resource.as_ref())
                    && eq(&self.subresource, r.subresource.as_ref())
                    && eq(&self.namespace, r.namespace.as_ref())
                    && eq(&self.name, r.name.as_ref())
            }
            (None, Some(n)) => {
                self.api_group.is_none()
                    && self.resource.is_none()
                    && self.subresource.is_none()
                    && self.namespace.is_none()
                    && self.name.is_none()
                    && eq(&self.verb, n.verb.as_ref())
                    && eq(&self.path, n.path.as_ref())
            }
            (None, None) => false,
        }
    }
}

/// What a matching rule decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `status.allowed = true`.
    Allow,
    /// `status.denied = true` with this reason.
    Deny(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authorization::v1::{NonResourceAttributes, ResourceAttributes};

    fn resource(user: &str, verb: &str, ns: &str, res: &str) -> SubjectAccessReviewSpec {
        SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec!["system:authenticated".into()]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                namespace: Some(ns.into()),
                resource: Some(res.into()),
                group: Some("metrics.smi-spec.io".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn set_fields_must_all_match() {
        let r = Rule::user("alice").verb("list").namespace("default");
        assert!(r.matches(&resource("alice", "list", "default", "pods")));
        assert!(!r.matches(&resource("alice", "get", "default", "pods")));
        assert!(!r.matches(&resource("bob", "list", "default", "pods")));
        assert!(Rule::any()
            .group("system:authenticated")
            .matches(&resource("x", "get", "", "")));
        assert!(!Rule::any()
            .group("system:masters")
            .matches(&resource("x", "get", "", "")));
        assert!(Rule::any().name("").matches(&resource("x", "get", "", "")));
    }

    #[test]
    fn paths_only_match_non_resource_reviews() {
        let nr = SubjectAccessReviewSpec {
            user: Some("alice".into()),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some("/apis".into()),
                verb: Some("get".into()),
            }),
            ..Default::default()
        };
        assert!(Rule::any().path("/apis").verb("get").matches(&nr));
        assert!(!Rule::any().resource("pods").matches(&nr));
        assert!(!Rule::any()
            .path("/apis")
            .matches(&resource("alice", "get", "", "")));
    }
}
