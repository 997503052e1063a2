//! Building PromQL text safely: every label value goes through [`escape`], so no
//! path segment or parameter can change the structure of a query.

use std::fmt::Write;
use std::time::Duration;

/// Escapes a label value for use inside a double-quoted PromQL string.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes regular-expression metacharacters (RE2 syntax) so `value` matches itself.
/// The result still goes through [`escape`] when rendered in a matcher.
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats a window as a PromQL range duration (`30s`, `1500ms`).
pub fn range(window: Duration) -> String {
    let ms = window.as_millis();
    match (ms / 1000, ms % 1000) {
        (secs, 0) => format!("{secs}s"),
        _ => format!("{ms}ms"),
    }
}

/// A label matcher operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (the value is a regular expression, anchored by Prometheus)
    Re,
    /// `!~`
    NotRe,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }
}

/// A series selector under construction: `metric{label="value", ...}`.
#[derive(Debug, Clone)]
pub struct Selector {
    metric: String,
    matchers: Vec<(String, Op, String)>,
}

impl Selector {
    /// Starts a selector for one metric name.
    pub fn new(metric: impl Into<String>) -> Self {
        Selector {
            metric: metric.into(),
            matchers: Vec::new(),
        }
    }

    /// Adds a matcher; the value is escaped when rendered.
    pub fn with(mut self, label: &str, op: Op, value: &str) -> Self {
        self.matchers
            .push((label.to_string(), op, value.to_string()));
        self
    }

    /// Adds `label="value"`.
    pub fn eq(self, label: &str, value: &str) -> Self {
        self.with(label, Op::Eq, value)
    }

    /// Adds `label!="value"`.
    pub fn ne(self, label: &str, value: &str) -> Self {
        self.with(label, Op::Ne, value)
    }

    /// Adds `label=~"regex"` (anchored by Prometheus).
    pub fn re(self, label: &str, regex: &str) -> Self {
        self.with(label, Op::Re, regex)
    }

    /// Adds `label!~"regex"`.
    pub fn not_re(self, label: &str, regex: &str) -> Self {
        self.with(label, Op::NotRe, regex)
    }

    /// Adds `label!=""`: the label must be present.
    pub fn present(self, label: &str) -> Self {
        self.with(label, Op::Ne, "")
    }

    /// The same matchers on another metric (e.g. the histogram of a counter).
    pub fn with_metric(&self, metric: &str) -> Selector {
        Selector {
            metric: metric.to_string(),
            matchers: self.matchers.clone(),
        }
    }

    /// The metric name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// Renders the selector as PromQL text.
    pub fn render(&self) -> String {
        let mut s = self.metric.clone();
        s.push('{');
        for (i, (label, op, value)) in self.matchers.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{label}{}\"{}\"", op.as_str(), escape(value));
        }
        s.push('}');
        s
    }
}

/// Bounds whose first significant digit is 1, 2 or 3 (`1`, `25`, `0.005` does not, `0.01`
/// does); the regex [`split_by_le`] splits on.
const LE_LOW_DIGIT: &str = r"(0\.0*)?[1-3].*";

/// Splits `sel` into two selectors over disjoint sets of series that together cover every
/// series `sel` selects: histogram buckets whose bound starts (after leading zeros) with 1,
/// 2 or 3, and all the others (the other buckets, `+Inf`, and series without `le`). Typical
/// bucket layouts (1-2-3-4-5 or 1-2.5-5 per decade) fall about evenly on both sides, so a
/// query over many series runs as two halves that Prometheus evaluates in parallel, and
/// summing both answers gives the answer of the whole (when `le` is kept by the grouping).
pub fn split_by_le(sel: &Selector) -> [Selector; 2] {
    [
        sel.clone().re("le", LE_LOW_DIGIT),
        sel.clone().not_re("le", LE_LOW_DIGIT),
    ]
}

/// `sum by (labels) (increase(selector[window]))`.
pub fn sum_increase(selector: &Selector, window: Duration, by: &[&str]) -> String {
    sum_by(by, &increase(&[selector.metric()], selector, window))
}

/// `sum by (labels) (inner)`.
pub fn sum_by(by: &[&str], inner: &str) -> String {
    format!("sum by ({}) ({inner})", by.join(", "))
}

/// The increase over `window` of the series the matchers of `selector` select under
/// any of `metrics`: `increase(a{...}[w]) or increase(b{...}[w])`. Exporters differ in
/// naming (Envoy counters with or without `_total`); `or` keeps the first name's series
/// where both exist, so a series is never counted twice.
pub fn increase(metrics: &[&str], selector: &Selector, window: Duration) -> String {
    let w = range(window);
    let parts: Vec<String> = metrics
        .iter()
        .map(|m| format!("increase({}[{w}])", selector.with_metric(m).render()))
        .collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_halves_are_a_matcher_and_its_complement() {
        let sel = Selector::new("m_bucket").eq("ns", "a");
        let [low, rest] = split_by_le(&sel);
        assert_eq!(low.render(), r#"m_bucket{ns="a", le=~"(0\\.0*)?[1-3].*"}"#);
        assert_eq!(rest.render(), r#"m_bucket{ns="a", le!~"(0\\.0*)?[1-3].*"}"#);
    }

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        assert_eq!(escape("plain-name.v1"), "plain-name.v1");
    }

    #[test]
    fn injection_stays_inside_the_string() {
        let s = Selector::new("m").eq("name", r#"x"} or vector(1) or m{a=""#);
        assert_eq!(s.render(), r#"m{name="x\"} or vector(1) or m{a=\""}"#);
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(regex_escape("store.v1"), r"store\.v1");
        assert_eq!(regex_escape("a|b(c)*"), r"a\|b\(c\)\*");
        let s = Selector::new("m").re("x", &regex_escape("a.b"));
        assert_eq!(s.render(), r#"m{x=~"a\\.b"}"#);
    }

    #[test]
    fn name_variants_are_or_ed() {
        let s = Selector::new("c").eq("a", "1");
        assert_eq!(
            increase(&["c", "c_total"], &s, Duration::from_secs(60)),
            r#"(increase(c{a="1"}[60s]) or increase(c_total{a="1"}[60s]))"#
        );
        assert_eq!(
            sum_by(&["a"], &increase(&["c"], &s, Duration::from_secs(60))),
            r#"sum by (a) (increase(c{a="1"}[60s]))"#
        );
    }

    #[test]
    fn renders_selector_and_sum() {
        let s = Selector::new("response_total")
            .eq("direction", "inbound")
            .present("deployment");
        assert_eq!(
            sum_increase(&s, Duration::from_secs(30), &["namespace", "deployment"]),
            r#"sum by (namespace, deployment) (increase(response_total{direction="inbound", deployment!=""}[30s]))"#
        );
        assert_eq!(range(Duration::from_millis(1500)), "1500ms");
        assert_eq!(range(Duration::from_secs(90)), "90s");
    }
}
