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

/// Formats a window as a PromQL range duration (`30s`, `1500ms`).
pub fn range(window: Duration) -> String {
    let ms = window.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
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

/// `sum by (labels) (increase(selector[window]))`.
pub fn sum_increase(selector: &Selector, window: Duration, by: &[&str]) -> String {
    format!(
        "sum by ({}) (increase({}[{}]))",
        by.join(", "),
        selector.render(),
        range(window)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
