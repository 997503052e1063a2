//! The complete decoder of Prometheus answers (`/api/v1/query` and `/api/v1/query_range`):
//! envelope, errors, vectors, scalars and matrices, with serde.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::labels::{LabelArena, LabelPairs, Str};
use super::{Labels, Matrix, QueryError, Sample, Vector};

/// A sample value as Prometheus prints it (a string), parsed while decoding.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sample value such as \"1.5\", \"NaN\" or \"+Inf\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                parse_value(v)
                    .map(Value)
                    .ok_or_else(|| E::custom(format!("sample value {v:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Series<Instant>),
    Scalar((f64, Value)),
    Matrix(Series<Range>),
}

/// What an element of a result array holds besides its label set, and under which key.
trait Point<'de>: Deserialize<'de> {
    /// The key: `value` or `values`.
    const KEY: &'static str;
}

/// A vector sample's `value`: its time and value.
#[derive(Deserialize)]
struct Instant((f64, Value));

impl Point<'_> for Instant {
    const KEY: &'static str = "value";
}

/// A matrix series' `values`.
#[derive(Deserialize)]
struct Range(Vec<(f64, Value)>);

impl Point<'_> for Range {
    const KEY: &'static str = "values";
}

/// The elements of a vector or of a matrix, their label sets in one [`LabelArena`].
struct Series<T> {
    labels: Vec<Labels>,
    points: Vec<T>,
}

impl<'de, T: Point<'de>> Deserialize<'de> for Series<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Elements<T>(PhantomData<T>);
        impl<'de, T: Point<'de>> Visitor<'de> for Elements<T> {
            type Value = Series<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "an array of {{\"metric\": …, \"{}\": …}} objects",
                    T::KEY
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Series<T>, A::Error> {
                let mut arena = LabelArena::default();
                let mut pairs = Vec::new();
                let mut points = Vec::new();
                while let Some(point) = seq.next_element_seed(Element {
                    arena: &mut arena,
                    pairs: &mut pairs,
                    point: PhantomData,
                })? {
                    points.push(point);
                }
                Ok(Series {
                    labels: arena.finish().collect(),
                    points,
                })
            }
        }
        d.deserialize_seq(Elements(PhantomData))
    }
}

/// Reads one element of a result array: its label set goes into `arena` (through `pairs`,
/// scratch space), its value(s) are returned.
struct Element<'s, 'de, T> {
    arena: &'s mut LabelArena,
    pairs: &'s mut Vec<(Cow<'de, str>, Cow<'de, str>)>,
    point: PhantomData<T>,
}

impl<'de, T: Point<'de>> DeserializeSeed<'de> for Element<'_, 'de, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Point<'de>> Visitor<'de> for Element<'_, 'de, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {{\"metric\": …, \"{}\": …}} object", T::KEY)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<T, A::Error> {
        let (mut labelled, mut point) = (false, None);
        while let Some(Str(key)) = m.next_key()? {
            if key == "metric" && !labelled {
                self.pairs.clear();
                m.next_value_seed(LabelPairs(self.pairs))?;
                self.arena.push(self.pairs);
                labelled = true;
            } else if key == T::KEY && point.is_none() {
                point = Some(m.next_value()?);
            } else if key == "metric" || key == T::KEY {
                let field = if key == "metric" { "metric" } else { T::KEY };
                return Err(serde::de::Error::duplicate_field(field));
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        if !labelled {
            return Err(serde::de::Error::missing_field("metric"));
        }
        point.ok_or_else(|| serde::de::Error::missing_field(T::KEY))
    }
}

/// Parses a sample value as Prometheus prints it (`"1.5"`, `"NaN"`, `"+Inf"`).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Checks the envelope of an answer and returns its data.
fn decode_data(url: &str, status: u16, body: &[u8]) -> Result<Data, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(env) => env,
        Err(e) => {
            let snippet: String =
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            if status >= 400 {
                return Err(QueryError::Rejected {
                    url: url.to_string(),
                    status,
                    error_type: "http".into(),
                    message: snippet,
                });
            }
            return Err(bad(format!(
                "HTTP {status}, not Prometheus JSON ({e}): {snippet:?}"
            )));
        }
    };
    if env.status != "success" {
        return Err(QueryError::Rejected {
            url: url.to_string(),
            status,
            error_type: env.error_type.unwrap_or_else(|| "unknown".into()),
            message: env.error.unwrap_or_default(),
        });
    }
    env.data.ok_or_else(|| bad("success without data".into()))
}

/// Decodes an `/api/v1/query` answer into a vector (a scalar becomes one unlabelled sample).
pub fn decode_vector(url: &str, status: u16, body: &[u8]) -> Result<Vector, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    match decode_data(url, status, body)? {
        Data::Vector(raw) => Ok(Vector(
            raw.labels
                .into_iter()
                .zip(raw.points)
                .map(|(labels, Instant((_, value)))| Sample {
                    labels,
                    value: value.0,
                })
                .collect(),
        )),
        Data::Scalar((_, v)) => Ok(Vector(vec![Sample {
            labels: Labels::default(),
            value: v.0,
        }])),
        Data::Matrix(_) => Err(bad("a matrix answered an instant query".into())),
    }
}

/// Decodes an `/api/v1/query_range` answer.
pub fn decode_matrix(url: &str, status: u16, body: &[u8]) -> Result<Matrix, QueryError> {
    let bad = |detail: String| QueryError::BadResponse {
        url: url.to_string(),
        detail,
    };
    match decode_data(url, status, body)? {
        Data::Matrix(raw) => Ok(Matrix(
            raw.labels
                .into_iter()
                .zip(raw.points)
                .map(|(labels, Range(values))| {
                    let points = values
                        .into_iter()
                        .map(|(t, v)| ((t * 1000.0).round() as i64, v.0))
                        .collect();
                    (labels, points)
                })
                .collect(),
        )),
        _ => Err(bad("a range query did not answer with a matrix".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_vector_with_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"b":"2","a":"1"},"value":[1700000000.5,"12.5"]},
            {"metric":{},"value":[1700000000.5,"NaN"]},
            {"metric":{"le":"+Inf"},"value":[1700000000.5,"+Inf"]}]}}"#;
        let v = decode_vector("http://p", 200, body).unwrap();
        assert_eq!(v.0.len(), 3);
        assert_eq!(v.0[0].labels.get("a"), Some("1"));
        assert_eq!(v.0[0].labels.get("b"), Some("2"));
        assert_eq!(v.0[0].labels.get("c"), None);
        assert_eq!(v.0[0].value, 12.5);
        assert!(v.0[1].value.is_nan());
        assert_eq!(v.0[2].value, f64::INFINITY);
    }

    #[test]
    fn labels_are_sorted_unescaped_and_compact() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"z":"last","a":"q\"u\u00e9","m":""},"value":[1,"1"]}]}}"#;
        let v = decode_vector("http://p", 200, body).unwrap();
        let l = &v.0[0].labels;
        let pairs: Vec<(&str, &str)> = l.iter().collect();
        assert_eq!(pairs, [("a", "q\"u\u{e9}"), ("m", ""), ("z", "last")]);
        let built = Labels::from_pairs([("z", "last"), ("m", ""), ("a", "q\"u\u{e9}")]);
        assert_eq!(l, &built);
        assert_eq!(l.get("m"), Some(""));
        assert_eq!(l.get("z"), Some("last"));
        assert_eq!(l.get("b"), None);
        assert_eq!(l.len(), 3);
        assert!(Labels::default().is_empty());
        assert_eq!(Labels::default().get("a"), None);
        assert_eq!(format!("{l:?}"), r#"{"a": "q\"ué", "m": "", "z": "last"}"#);
    }

    #[test]
    fn bad_sample_values_are_rejected() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"twelve"]}]}}"#;
        match decode_vector("http://p", 200, body) {
            Err(QueryError::BadResponse { detail, .. }) => {
                assert!(detail.contains(r#"sample value "twelve""#), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn elements_in_any_key_order_with_extra_keys() {
        let body = br#"{"data":{"result":[
            {"value":[1,"2"],"extra":{"x":[1]},"metric":{"a":"1"}},
            {"metric":{"a":"2","b":"3"},"value":[1,"4"]}],"resultType":"vector"},
            "status":"success","warnings":["w"]}"#;
        let v = decode_vector("http://p", 200, body).unwrap();
        assert_eq!(v.0.len(), 2);
        assert_eq!((v.0[0].labels.get("a"), v.0[0].value), (Some("1"), 2.0));
        assert_eq!(v.0[1].labels, Labels::from_pairs([("b", "3"), ("a", "2")]));
        assert_eq!(v.0[1].value, 4.0);
        for (bad, why) in [
            (
                r#"{"metric":{},"value":[1,"2"],"value":[1,"3"]}"#,
                "duplicate field `value`",
            ),
            (
                r#"{"metric":{},"metric":{},"value":[1,"2"]}"#,
                "duplicate field `metric`",
            ),
            (r#"{"value":[1,"2"]}"#, "missing field `metric`"),
            (r#"{"metric":{}}"#, "missing field `value`"),
            (
                r#"{"metric":{"a":1},"value":[1,"2"]}"#,
                "invalid type: integer `1`",
            ),
        ] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{bad}]}}}}"#
            );
            match decode_vector("http://p", 200, body.as_bytes()) {
                Err(QueryError::BadResponse { detail, .. }) => {
                    assert!(detail.contains(why), "{bad}: {detail}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn decodes_matrix() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"1"},"values":[[1700000000,"1"],[1700000010.5,"NaN"]]}]}}"#;
        let m = decode_matrix("http://p", 200, body).unwrap();
        assert_eq!(m.0[0].0.get("a"), Some("1"));
        assert_eq!(m.0[0].1[0], (1_700_000_000_000, 1.0));
        assert_eq!(m.0[0].1[1].0, 1_700_000_010_500);
        assert!(decode_vector("http://p", 200, body).is_err());
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_matrix("http://p", 200, v).is_err());
    }

    #[test]
    fn error_envelope_becomes_rejected() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        match decode_vector("http://p", 400, body) {
            Err(QueryError::Rejected {
                status,
                error_type,
                message,
                ..
            }) => {
                assert_eq!(
                    (status, error_type.as_str(), message.as_str()),
                    (400, "bad_data", "parse error")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_json_answers_are_explained() {
        assert!(matches!(
            decode_vector("http://p", 502, b"<html>bad gateway</html>"),
            Err(QueryError::Rejected { status: 502, .. })
        ));
        assert!(matches!(
            decode_vector("http://p", 200, b"hello"),
            Err(QueryError::BadResponse { .. })
        ));
    }
}
