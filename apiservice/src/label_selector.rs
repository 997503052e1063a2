//! Kubernetes label selectors (`app=web,tier in (a,b),!canary`), parsed and matched
//! against an object's labels, as the HPA sends them in `labelSelector`.

use std::collections::BTreeMap;

use crate::status::ApiError;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` / `key==value`
    Equals(String, String),
    /// `key!=value`
    NotEquals(String, String),
    /// `key in (a,b)`
    In(String, Vec<String>),
    /// `key notin (a,b)`
    NotIn(String, Vec<String>),
    /// `key`
    Exists(String),
    /// `!key`
    NotExists(String),
}

/// A parsed selector: all requirements must hold (empty selects everything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parses the Kubernetes selector syntax.
    pub fn parse(s: &str) -> Result<Selector, ApiError> {
        let bad = |term: &str| {
            ApiError::bad_request(format!(
                "invalid labelSelector term {term:?}: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
            ))
        };
        let mut out = Vec::new();
        for term in split_terms(s) {
            let t = term.trim();
            if t.is_empty() {
                continue;
            }
            let req = if let Some(k) = t.strip_prefix('!') {
                Requirement::NotExists(key(k).ok_or_else(|| bad(t))?)
            } else if let Some((k, v)) = t.split_once("!=") {
                Requirement::NotEquals(key(k).ok_or_else(|| bad(t))?, v.trim().to_string())
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                Requirement::Equals(key(k).ok_or_else(|| bad(t))?, v.trim().to_string())
            } else if let Some((k, set)) = set_term(t, " notin ") {
                Requirement::NotIn(key(k).ok_or_else(|| bad(t))?, set.ok_or_else(|| bad(t))?)
            } else if let Some((k, set)) = set_term(t, " in ") {
                Requirement::In(key(k).ok_or_else(|| bad(t))?, set.ok_or_else(|| bad(t))?)
            } else {
                Requirement::Exists(key(t).ok_or_else(|| bad(t))?)
            };
            out.push(req);
        }
        Ok(Selector(out))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn key(k: &str) -> Option<String> {
    let k = k.trim();
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| k.to_string())
}

fn set_term<'a>(t: &'a str, op: &str) -> Option<(&'a str, Option<Vec<String>>)> {
    let (k, rest) = t.split_once(op)?;
    let set = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| {
            inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect()
        });
    Some((k, set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_every_form() {
        let s = Selector::parse(
            "app=web, tier in (front, edge),env!=dev,!canary,team,version notin (v0)",
        )
        .unwrap();
        assert_eq!(s.0.len(), 6);
        let good = labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("env", "prod"),
            ("team", "x"),
            ("version", "v1"),
        ]);
        assert!(s.matches(&good));
        let mut canary = good.clone();
        canary.insert("canary".into(), "true".into());
        assert!(!s.matches(&canary));
        let mut other_tier = good.clone();
        other_tier.insert("tier".into(), "back".into());
        assert!(!s.matches(&other_tier));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("app==web")
            .unwrap()
            .matches(&labels(&[("app", "web")])));
        assert!(Selector::parse("app.kubernetes.io/name=web")
            .unwrap()
            .matches(&labels(&[("app.kubernetes.io/name", "web")])));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["app in web", "=web", "a b", "x in (a"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
