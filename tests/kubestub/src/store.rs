//! A generic object store answering GET, LIST and WATCH of any resource by its URL
//! path, the way kube-apiserver lays them out:
//!
//! * `/api/v1/namespaces/<ns>/<resource>[/<name>]` and `/apis/<g>/<v>/namespaces/<ns>/<resource>[/<name>]`
//! * `/api/v1/<resource>[/<name>]` (cluster-scoped objects, or a list across namespaces)
//!
//! Every change gets the next resourceVersion and is kept in a history, so a watch
//! can start from any resourceVersion it was given.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// Where an object lives: API prefix (`api/v1`, `apis/apps/v1`), resource
/// (plural), namespace (`None` for cluster-scoped objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub prefix: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// What a GET path selects: one object, or a list (optionally limited to a namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    pub prefix: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Selection {
    /// Parses a request path; `None` when it names no resource.
    pub fn parse(path: &str) -> Option<Selection> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, rest) = match parts.as_slice() {
            ["api", v, rest @ ..] => (format!("api/{v}"), rest),
            ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            _ => (None, rest),
        };
        match rest {
            [resource] => Some(Selection {
                prefix,
                resource: resource.to_string(),
                namespace,
                name: None,
            }),
            [resource, name] => Some(Selection {
                prefix,
                resource: resource.to_string(),
                namespace,
                name: Some(name.to_string()),
            }),
            _ => None,
        }
    }

    /// Whether the object at `key` is selected (for lists and watches).
    fn matches(&self, key: &Key, field_name: Option<&str>) -> bool {
        key.prefix == self.prefix
            && key.resource == self.resource
            && (self.namespace.is_none() || self.namespace == key.namespace)
            && self.name.as_deref().is_none_or(|n| n == key.name)
            && field_name.is_none_or(|n| n == key.name)
    }

    /// The `apiVersion` of objects under this prefix (`v1`, `apps/v1`).
    fn api_version(&self) -> &str {
        self.prefix
            .strip_prefix("api/")
            .or_else(|| self.prefix.strip_prefix("apis/"))
            .unwrap_or(&self.prefix)
    }
}

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history.
#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    kind: EventType,
    key: Key,
    object: Value,
}

/// The objects, their history and the last resourceVersion handed out.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    kinds: HashMap<(String, String), String>,
    history: Vec<Change>,
    rv: u64,
}

impl Store {
    /// The last resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Creates or replaces an object; sets its `metadata.resourceVersion`.
    pub fn put(&mut self, key: Key, kind: &str, mut object: Value) {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.kinds
            .insert((key.prefix.clone(), key.resource.clone()), kind.to_string());
        let kind = match self.objects.insert(key.clone(), object.clone()) {
            Some(_) => EventType::Modified,
            None => EventType::Added,
        };
        self.history.push(Change {
            rv: self.rv,
            kind,
            key,
            object,
        });
    }

    /// Removes an object; false if there was none.
    pub fn delete(&mut self, key: &Key) -> bool {
        let Some(mut object) = self.objects.remove(key) else {
            return false;
        };
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.history.push(Change {
            rv: self.rv,
            kind: EventType::Deleted,
            key: key.clone(),
            object,
        });
        true
    }

    /// The object a selection with a name points at.
    pub fn get(&self, sel: &Selection) -> Option<Value> {
        let key = Key {
            prefix: sel.prefix.clone(),
            resource: sel.resource.clone(),
            namespace: sel.namespace.clone(),
            name: sel.name.clone()?,
        };
        self.objects.get(&key).cloned()
    }

    /// A `<Kind>List` of the selected objects.
    pub fn list(&self, sel: &Selection, field_name: Option<&str>) -> Value {
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, _)| sel.matches(k, field_name))
            .map(|(_, v)| v.clone())
            .collect();
        let kind = self
            .kinds
            .get(&(sel.prefix.clone(), sel.resource.clone()))
            .map(|k| format!("{k}List"))
            .unwrap_or_else(|| "List".into());
        json!({
            "apiVersion": sel.api_version(),
            "kind": kind,
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        })
    }

    /// Watch events for the selection after resourceVersion `after`, as JSON
    /// lines. With `after == None` the current objects come first, as ADDED.
    pub fn events(
        &self,
        sel: &Selection,
        field_name: Option<&str>,
        after: Option<u64>,
    ) -> Vec<(u64, String)> {
        let line = |kind: EventType, object: &Value| {
            let mut s = json!({"type": kind.as_str(), "object": object}).to_string();
            s.push('\n');
            s
        };
        match after {
            None => self
                .objects
                .iter()
                .filter(|(k, _)| sel.matches(k, field_name))
                .map(|(_, v)| (self.rv, line(EventType::Added, v)))
                .collect(),
            Some(after) => self
                .history
                .iter()
                .filter(|c| c.rv > after && sel.matches(&c.key, field_name))
                .map(|c| (c.rv, line(c.kind, &c.object)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> Key {
        Key {
            prefix: "api/v1".into(),
            resource: "configmaps".into(),
            namespace: Some(ns.into()),
            name: name.into(),
        }
    }

    #[test]
    fn paths_select_like_kube_apiserver() {
        let s = Selection::parse("/api/v1/namespaces/kube-system/configmaps/x").unwrap();
        assert_eq!(
            (
                s.prefix.as_str(),
                s.resource.as_str(),
                s.namespace.as_deref(),
                s.name.as_deref()
            ),
            ("api/v1", "configmaps", Some("kube-system"), Some("x"))
        );
        let s = Selection::parse("/api/v1/namespaces/default").unwrap();
        assert_eq!(
            (s.resource.as_str(), s.namespace, s.name.as_deref()),
            ("namespaces", None, Some("default"))
        );
        let s = Selection::parse("/apis/apps/v1/deployments").unwrap();
        assert_eq!((s.prefix.as_str(), s.name), ("apis/apps/v1", None));
        assert!(Selection::parse("/healthz").is_none());
        assert!(Selection::parse("/api/v1/namespaces/a/pods/b/status/x").is_none());
    }

    #[test]
    fn history_replays_changes_after_a_resource_version() {
        let mut st = Store::default();
        st.put(
            key("a", "one"),
            "ConfigMap",
            json!({"metadata": {"name": "one"}}),
        );
        let rv = st.resource_version();
        st.put(
            key("a", "one"),
            "ConfigMap",
            json!({"metadata": {"name": "one"}, "data": {"k": "v"}}),
        );
        st.put(
            key("b", "two"),
            "ConfigMap",
            json!({"metadata": {"name": "two"}}),
        );
        assert!(st.delete(&key("b", "two")));
        assert!(!st.delete(&key("b", "two")));
        let sel = Selection::parse("/api/v1/namespaces/a/configmaps").unwrap();
        let ev = st.events(&sel, None, Some(rv));
        assert_eq!(ev.len(), 1);
        assert!(ev[0].1.contains("MODIFIED") && ev[0].1.contains("\"k\""));
        let all = Selection::parse("/api/v1/configmaps").unwrap();
        let kinds: Vec<bool> = st
            .events(&all, None, Some(0))
            .iter()
            .map(|e| e.1.contains("DELETED"))
            .collect();
        assert_eq!(kinds, [false, false, false, true]);
        assert_eq!(st.events(&all, Some("one"), None).len(), 1);
        let list = st.list(&all, None);
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0]["metadata"]["resourceVersion"], "2");
    }
}
