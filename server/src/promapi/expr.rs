//! The PromQL subset served to Grafana, parsed with `promql-parser`:
//! number literals, vector selectors over the virtual `smi_*` series (all four
//! matcher types), `sum|avg|min|max|count [by|without (...)]`, `topk|bottomk(k, ...)`,
//! unary minus and `+ - * /` where at least one side is a scalar. Anything else is
//! rejected with a message naming what is supported.

use std::collections::BTreeMap;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::ast::LabelModifier;
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::Expr;

/// A compiled query.
#[derive(Debug, Clone)]
pub enum Query {
    /// A number.
    Scalar(f64),
    /// A selector over the virtual series.
    Select(Vec<Matcher>),
    /// An aggregation.
    Aggregate {
        /// The operation.
        op: AggOp,
        /// `by` (true) or `without` (false) grouping.
        by: bool,
        /// The grouping labels.
        labels: Vec<String>,
        /// The aggregated expression.
        expr: Box<Query>,
    },
    /// `topk`/`bottomk`.
    Top {
        /// How many series.
        k: usize,
        /// `bottomk` instead of `topk`.
        bottom: bool,
        /// The ranked expression.
        expr: Box<Query>,
    },
    /// Arithmetic with at least one scalar side.
    Arith {
        /// The operator.
        op: ArithOp,
        /// Left side.
        lhs: Box<Query>,
        /// Right side.
        rhs: Box<Query>,
    },
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl ArithOp {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::Div => a / b,
        }
    }
}

const SUPPORTED: &str = "supported: number literals, smi_* selectors with =, !=, =~, !~ matchers, sum/avg/min/max/count [by|without (...)], topk/bottomk, unary minus, and + - * / with a scalar side";

/// Parses and compiles PromQL text.
pub fn compile(text: &str) -> Result<Query, String> {
    let expr = promql_parser::parser::parse(text).map_err(|e| format!("parse error: {e}"))?;
    lower(&expr)
}

fn lower(e: &Expr) -> Result<Query, String> {
    match e {
        Expr::NumberLiteral(n) => Ok(Query::Scalar(n.val)),
        Expr::Paren(p) => lower(&p.expr),
        Expr::Unary(u) => Ok(Query::Arith {
            op: ArithOp::Mul,
            lhs: Box::new(Query::Scalar(-1.0)),
            rhs: Box::new(lower(&u.expr)?),
        }),
        Expr::VectorSelector(v) => {
            if v.offset.is_some() || v.at.is_some() {
                return Err(format!("offset and @ modifiers are not supported; {SUPPORTED}"));
            }
            if !v.matchers.or_matchers.is_empty() {
                return Err(format!("'or' inside a selector is not supported; {SUPPORTED}"));
            }
            let mut matchers = v.matchers.matchers.clone();
            if let Some(name) = &v.name {
                matchers.push(Matcher::new(MatchOp::Equal, "__name__", name));
            }
            Ok(Query::Select(matchers))
        }
        Expr::Aggregate(a) => {
            let id = a.op.id();
            let inner = Box::new(lower(&a.expr)?);
            if id == token::T_TOPK || id == token::T_BOTTOMK {
                let k = match a.param.as_deref().map(lower) {
                    Some(Ok(Query::Scalar(k))) if k >= 0.0 => k as usize,
                    _ => return Err("topk/bottomk need a non-negative number as first argument".into()),
                };
                return Ok(Query::Top {
                    k,
                    bottom: id == token::T_BOTTOMK,
                    expr: inner,
                });
            }
            let op = agg_op(&a.op).ok_or_else(|| format!("aggregation {} is not supported; {SUPPORTED}", a.op))?;
            let (by, labels) = match &a.modifier {
                None => (true, Vec::new()),
                Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            };
            Ok(Query::Aggregate {
                op,
                by,
                labels,
                expr: inner,
            })
        }
        Expr::Binary(b) => {
            let op = match b.op.id() {
                id if id == token::T_ADD => ArithOp::Add,
                id if id == token::T_SUB => ArithOp::Sub,
                id if id == token::T_MUL => ArithOp::Mul,
                id if id == token::T_DIV => ArithOp::Div,
                _ => return Err(format!("operator {} is not supported; {SUPPORTED}", b.op)),
            };
            let (lhs, rhs) = (lower(&b.lhs)?, lower(&b.rhs)?);
            if !matches!(lhs, Query::Scalar(_)) && !matches!(rhs, Query::Scalar(_)) {
                return Err(format!("arithmetic between two vectors is not supported; {SUPPORTED}"));
            }
            Ok(Query::Arith {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            })
        }
        Expr::Call(c) => Err(format!("function {}() is not supported; {SUPPORTED}", c.func.name)),
        Expr::MatrixSelector(_) => Err(format!("range selectors ([5m]) are not supported: smi_* series are already computed over a window (set it with the window label); {SUPPORTED}")),
        Expr::Subquery(_) => Err(format!("subqueries are not supported; {SUPPORTED}")),
        Expr::StringLiteral(_) => Err(format!("string literals are not supported; {SUPPORTED}")),
        Expr::Extension(_) => Err(SUPPORTED.to_string()),
    }
}

fn agg_op(t: &TokenType) -> Option<AggOp> {
    let id = t.id();
    Some(match id {
        _ if id == token::T_SUM => AggOp::Sum,
        _ if id == token::T_AVG => AggOp::Avg,
        _ if id == token::T_MIN => AggOp::Min,
        _ if id == token::T_MAX => AggOp::Max,
        _ if id == token::T_COUNT => AggOp::Count,
        _ => return None,
    })
}

/// The labels of one series.
pub type Series = BTreeMap<String, String>;

/// Labelled values at one instant.
pub type Samples = Vec<(Series, f64)>;

/// The value of an expression at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar.
    Scalar(f64),
    /// An instant vector.
    Vector(Vec<(Series, f64)>),
}

/// Evaluates `q` at one instant, reading selectors through `select`.
pub fn eval(q: &Query, select: &mut dyn FnMut(&[Matcher]) -> Samples) -> Value {
    match q {
        Query::Scalar(v) => Value::Scalar(*v),
        Query::Select(m) => Value::Vector(select(m)),
        Query::Arith { op, lhs, rhs } => match (eval(lhs, select), eval(rhs, select)) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(op.apply(a, b)),
            (Value::Vector(v), Value::Scalar(b)) => Value::Vector(arith(v, |a| op.apply(a, b))),
            (Value::Scalar(a), Value::Vector(v)) => Value::Vector(arith(v, |b| op.apply(a, b))),
            (Value::Vector(_), Value::Vector(_)) => Value::Vector(Vec::new()),
        },
        Query::Aggregate {
            op,
            by,
            labels,
            expr,
        } => match eval(expr, select) {
            Value::Vector(v) => Value::Vector(aggregate(*op, *by, labels, v)),
            s => s,
        },
        Query::Top { k, bottom, expr } => match eval(expr, select) {
            Value::Vector(mut v) => {
                v.sort_by(|a, b| {
                    let o = a.1.total_cmp(&b.1);
                    if *bottom {
                        o
                    } else {
                        o.reverse()
                    }
                });
                v.truncate(*k);
                Value::Vector(v)
            }
            s => s,
        },
    }
}

/// Arithmetic drops the metric name, as Prometheus does.
fn arith(v: Vec<(Series, f64)>, f: impl Fn(f64) -> f64) -> Vec<(Series, f64)> {
    v.into_iter()
        .map(|(mut s, x)| {
            s.remove("__name__");
            (s, f(x))
        })
        .collect()
}

fn aggregate(op: AggOp, by: bool, labels: &[String], v: Vec<(Series, f64)>) -> Vec<(Series, f64)> {
    let mut groups: BTreeMap<Series, Vec<f64>> = BTreeMap::new();
    for (s, x) in v {
        let key: Series = s
            .into_iter()
            .filter(|(k, _)| k != "__name__" && (labels.contains(k) == by))
            .collect();
        groups.entry(key).or_default().push(x);
    }
    groups
        .into_iter()
        .map(|(k, xs)| {
            let n = xs.len() as f64;
            let v = match op {
                AggOp::Sum => xs.iter().sum(),
                AggOp::Avg => xs.iter().sum::<f64>() / n,
                AggOp::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
                AggOp::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                AggOp::Count => n,
            };
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)]) -> Series {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn data() -> Vec<(Series, f64)> {
        vec![
            (
                series(&[
                    ("__name__", "smi_requests_per_second"),
                    ("namespace", "a"),
                    ("name", "x"),
                ]),
                1.0,
            ),
            (
                series(&[
                    ("__name__", "smi_requests_per_second"),
                    ("namespace", "a"),
                    ("name", "y"),
                ]),
                3.0,
            ),
            (
                series(&[
                    ("__name__", "smi_requests_per_second"),
                    ("namespace", "b"),
                    ("name", "z"),
                ]),
                5.0,
            ),
        ]
    }

    fn run(text: &str) -> Value {
        let q = compile(text).unwrap();
        eval(&q, &mut |m| {
            data()
                .into_iter()
                .filter(|(s, _)| {
                    m.iter()
                        .all(|m| m.is_match(s.get(&m.name).map(String::as_str).unwrap_or("")))
                })
                .collect()
        })
    }

    #[test]
    fn health_check_arithmetic() {
        assert_eq!(run("1+1"), Value::Scalar(2.0));
        assert_eq!(run("-(2 * 3) / 4"), Value::Scalar(-1.5));
    }

    #[test]
    fn selectors_with_every_matcher_type() {
        let n = |text| match run(text) {
            Value::Vector(v) => v.len(),
            _ => panic!(),
        };
        assert_eq!(n(r#"smi_requests_per_second{namespace="a"}"#), 2);
        assert_eq!(n(r#"smi_requests_per_second{namespace!="a"}"#), 1);
        assert_eq!(n(r#"smi_requests_per_second{name=~"x|z"}"#), 2);
        assert_eq!(n(r#"smi_requests_per_second{name!~"x.*"}"#), 2);
        assert_eq!(n(r#"{__name__=~"smi_.*"}"#), 3);
    }

    #[test]
    fn aggregations_topk_and_scalar_arithmetic() {
        let Value::Vector(v) = run("sum by (namespace) (smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(
            v,
            vec![
                (series(&[("namespace", "a")]), 4.0),
                (series(&[("namespace", "b")]), 5.0)
            ]
        );
        let Value::Vector(v) = run("max without (name) (smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        let Value::Vector(v) = run("topk(1, smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(v[0].1, 5.0);
        let Value::Vector(v) = run("bottomk(2, smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [1.0, 3.0]);
        let Value::Vector(v) = run("100 * smi_requests_per_second{name=\"x\"}") else {
            panic!()
        };
        assert_eq!(
            v,
            vec![(series(&[("namespace", "a"), ("name", "x")]), 100.0)]
        );
        let Value::Vector(v) = run("count(smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(v[0].1, 3.0);
        let Value::Vector(v) = run("avg(smi_requests_per_second)") else {
            panic!()
        };
        assert_eq!(v[0].1, 3.0);
    }

    #[test]
    fn everything_else_is_rejected_with_the_supported_list() {
        for bad in [
            "rate(smi_success_count[5m])",
            "smi_success_count[5m]",
            "smi_success_count offset 5m",
            "smi_a / smi_b",
            "stddev(smi_success_count)",
            "smi_a > 1",
            "\"text\"",
            "sum(",
        ] {
            let e = compile(bad).unwrap_err();
            assert!(
                e.contains("supported") || e.contains("parse error"),
                "{bad}: {e}"
            );
        }
    }
}
