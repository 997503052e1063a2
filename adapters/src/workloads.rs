//! Kinds for workload names that carry none.
//!
//! Istio (`destination_workload`), Hubble (`destination_workload`) and Kuma
//! (`kuma_workload`) name a pod's owner without saying whether it is a Deployment, a
//! StatefulSet, a DaemonSet or a Job. [`WorkloadKinds`] is the configured answer: rules
//! matching namespace and name (with `*` wildcards), first match wins, else a default
//! kind. Nothing is looked up in the Kubernetes API: the data path needs no extra
//! permissions and answers the same whatever the cluster's state.

use serde::Deserialize;

use crate::model::Kind;

/// A workload kind, as written in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WorkloadKind {
    /// `Deployment`.
    Deployment,
    /// `StatefulSet`.
    StatefulSet,
    /// `DaemonSet`.
    DaemonSet,
    /// `Job`.
    Job,
}

impl From<WorkloadKind> for Kind {
    fn from(k: WorkloadKind) -> Kind {
        match k {
            WorkloadKind::Deployment => Kind::Deployment,
            WorkloadKind::StatefulSet => Kind::StatefulSet,
            WorkloadKind::DaemonSet => Kind::DaemonSet,
            WorkloadKind::Job => Kind::Job,
        }
    }
}

/// One rule: workloads whose namespace and name match are of `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadRule {
    /// The kind of matching workloads.
    pub kind: WorkloadKind,
    /// Namespace pattern (`*` matches any run of characters); absent: any namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name pattern (`*` matches any run of characters).
    pub name: String,
}

/// How kind-less workload names map to kinds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadKinds {
    /// The kind of names no rule matches.
    #[serde(default = "default_kind")]
    pub default: WorkloadKind,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<WorkloadRule>,
}

fn default_kind() -> WorkloadKind {
    WorkloadKind::Deployment
}

impl Default for WorkloadKinds {
    /// Every workload is a Deployment.
    fn default() -> Self {
        WorkloadKinds {
            default: default_kind(),
            rules: Vec::new(),
        }
    }
}

impl WorkloadKinds {
    /// The kind of the workload `name` in `namespace`.
    pub fn kind_of(&self, namespace: &str, name: &str) -> Kind {
        self.rules
            .iter()
            .find(|r| {
                r.namespace.as_deref().is_none_or(|p| glob(p, namespace)) && glob(&r.name, name)
            })
            .map_or(self.default, |r| r.kind)
            .into()
    }
}

/// Whether `text` matches `pattern`, where `*` matches any (possibly empty) run.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("db", "db"));
        assert!(!glob("db", "db2"));
        assert!(glob("*", ""));
        assert!(glob("redis-*", "redis-main"));
        assert!(glob("*-agent", "node-agent"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
    }

    #[test]
    fn first_matching_rule_wins_else_default() {
        let k: WorkloadKinds = serde_json::from_str(
            r#"{"rules":[
                {"kind":"StatefulSet","namespace":"shop","name":"db"},
                {"kind":"DaemonSet","name":"*-agent"},
                {"kind":"Job","namespace":"batch","name":"*"}]}"#,
        )
        .unwrap();
        assert_eq!(k.kind_of("shop", "db"), Kind::StatefulSet);
        assert_eq!(k.kind_of("other", "db"), Kind::Deployment);
        assert_eq!(k.kind_of("platform", "node-agent"), Kind::DaemonSet);
        assert_eq!(k.kind_of("batch", "report"), Kind::Job);
        assert_eq!(WorkloadKinds::default().kind_of("a", "b"), Kind::Deployment);
        assert!(serde_json::from_str::<WorkloadKinds>(r#"{"default":"Pod"}"#).is_err());
        assert!(serde_json::from_str::<WorkloadKinds>(r#"{"rule":[]}"#).is_err());
    }
}
