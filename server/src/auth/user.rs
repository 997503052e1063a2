//! Who made a request: the identity every authenticator produces and every
//! SubjectAccessReview carries, and the well-known names Kubernetes gives some
//! users and groups.

use std::collections::BTreeMap;

/// The user of requests that carry no credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of requests that carry no credentials.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group every authenticated identity belongs to.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group that is always authorized, without a SubjectAccessReview.
pub const MASTERS: &str = "system:masters";

/// An authenticated (or anonymous) identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// UID, if the authenticator knows one.
    pub uid: String,
    /// Groups, in the order they were given.
    pub groups: Vec<String>,
    /// Extra attributes (keys lower-case).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `system:anonymous` in group `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..UserInfo::default()
        }
    }

    /// Adds `system:authenticated` unless the groups already hold it or
    /// `system:unauthenticated` (what k8s.io/apiserver's AuthenticatedGroupAdder does,
    /// so that RBAC bindings to `system:authenticated` apply to every real user).
    pub fn with_authenticated_group(mut self) -> UserInfo {
        if !self
            .groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            self.groups.push(AUTHENTICATED.into());
        }
        self
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_group_is_added_once() {
        let u = UserInfo {
            name: "system:kube-aggregator".into(),
            ..UserInfo::default()
        }
        .with_authenticated_group();
        assert_eq!(u.groups, [AUTHENTICATED]);
        assert_eq!(u.clone().with_authenticated_group(), u);
        let a = UserInfo::anonymous().with_authenticated_group();
        assert_eq!(a.groups, [UNAUTHENTICATED]);
        assert!(a.in_group(UNAUTHENTICATED) && !a.in_group(MASTERS));
    }
}
