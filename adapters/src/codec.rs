//! How object names are written into label values, and read back.
//!
//! Most meshes put a name into a label as it is ([`Codec::Plain`]). Some transform it:
//!
//! * [`Codec::Sanitized`]: Envoy turns every character of a stat name outside
//!   `[A-Za-z0-9_]` into `_`, and labels cut out of such names (OSM's WASM stats) keep
//!   the damage: `bookstore-v1` and `bookstore.v1` both read `bookstore_v1`. Kubernetes
//!   names never contain `_`, so `_` decodes as `-`; a dot cannot be recovered.
//! * [`Codec::Template`]: one label holds both namespace and name in a fixed pattern,
//!   e.g. Kuma's `kuma.io/service` tag `api_shop_svc_8080`.
//!
//! [`Codec::encode`] gives the matcher that selects a name; [`Codec::decode_name`] and
//! [`Codec::decode_namespace`] read a value back.

use crate::promql::{regex_escape, Op};

/// A pattern for [`Codec::Template`]: literal text with the placeholders `{name}`,
/// `{namespace}` and `{number}` (one or more digits), e.g. `{name}_{namespace}_svc_{number}`.
pub type Pattern = &'static str;

/// How names appear in label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// The value is the name.
    Plain,
    /// Envoy-sanitised: characters outside `[A-Za-z0-9_]` became `_`; read back with
    /// `_` → `-`.
    Sanitized,
    /// The value follows a [`Pattern`] holding the namespace and the name.
    Template(Pattern),
}

/// One piece of a parsed [`Pattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Name,
    Namespace,
    Number,
}

fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let hole = [
            ("{name}", Piece::Name),
            ("{namespace}", Piece::Namespace),
            ("{number}", Piece::Number),
        ]
        .into_iter()
        .filter_map(|(tag, piece)| rest.find(tag).map(|at| (at, tag.len(), piece)))
        .min_by_key(|&(at, _, _)| at);
        match hole {
            Some((at, len, piece)) => {
                if at > 0 {
                    out.push(Piece::Literal(&rest[..at]));
                }
                out.push(piece);
                rest = &rest[at + len..];
            }
            None => {
                out.push(Piece::Literal(rest));
                rest = "";
            }
        }
    }
    out
}

/// Envoy's stat-name sanitising: every character outside `[A-Za-z0-9_]` becomes `_`.
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Matches `value` against pattern pieces: each placeholder takes the shortest
/// non-empty run that lets the rest match. Returns (namespace, name) captures.
fn capture<'v>(
    pieces: &[Piece<'_>],
    value: &'v str,
    ns: Option<&'v str>,
    name: Option<&'v str>,
) -> Option<(Option<&'v str>, Option<&'v str>)> {
    let Some((first, rest)) = pieces.split_first() else {
        return value.is_empty().then_some((ns, name));
    };
    match first {
        Piece::Literal(l) => capture(rest, value.strip_prefix(l)?, ns, name),
        hole => (1..=value.len())
            .filter(|&end| value.is_char_boundary(end))
            .find_map(|end| {
                let (taken, left) = value.split_at(end);
                match hole {
                    Piece::Number if !taken.bytes().all(|b| b.is_ascii_digit()) => None,
                    Piece::Name => capture(rest, left, ns, Some(taken)),
                    Piece::Namespace => capture(rest, left, Some(taken), name),
                    _ => capture(rest, left, ns, name),
                }
            }),
    }
}

impl Codec {
    /// The matcher (operator and value) selecting label values that name `name` in
    /// `namespace`. For a [`Codec::Template`], a `None` part matches any value; for the
    /// other codecs `namespace` is ignored (it has its own label).
    pub fn encode(self, namespace: Option<&str>, name: Option<&str>) -> (Op, String) {
        match self {
            Codec::Plain => (Op::Eq, name.unwrap_or_default().to_string()),
            Codec::Sanitized => (Op::Eq, sanitize(name.unwrap_or_default())),
            Codec::Template(pattern) => {
                let regex: String = pieces(pattern)
                    .into_iter()
                    .map(|p| match p {
                        Piece::Literal(l) => regex_escape(l),
                        Piece::Name => name.map_or_else(|| ".+".into(), regex_escape),
                        Piece::Namespace => namespace.map_or_else(|| ".+".into(), regex_escape),
                        Piece::Number => "[0-9]+".into(),
                    })
                    .collect();
                (Op::Re, regex)
            }
        }
    }

    /// Reads a name back from a label value; `None` when the value does not follow
    /// the codec (e.g. another cluster's name).
    pub fn decode_name(self, value: &str) -> Option<String> {
        match self {
            Codec::Plain => Some(value.to_string()),
            Codec::Sanitized => Some(value.replace('_', "-")),
            Codec::Template(pattern) => capture(&pieces(pattern), value, None, None)?
                .1
                .map(str::to_string),
        }
    }

    /// Reads a namespace back from a label value (for a [`Codec::Template`], the
    /// `{namespace}` part of the same value that holds the name).
    pub fn decode_namespace(self, value: &str) -> Option<String> {
        match self {
            Codec::Template(pattern) => capture(&pieces(pattern), value, None, None)?
                .0
                .map(str::to_string),
            other => other.decode_name(value),
        }
    }

    /// Whether namespace and name share one label.
    pub fn combined(self) -> bool {
        matches!(self, Codec::Template(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUMA: Codec = Codec::Template("{name}_{namespace}_svc_{number}");

    #[test]
    fn sanitized_names_decode_dashes_and_lose_dots() {
        assert_eq!(sanitize("bookstore-v1"), "bookstore_v1");
        assert_eq!(sanitize("store.v1"), "store_v1");
        assert_eq!(
            Codec::Sanitized.encode(None, Some("store.v1")),
            (Op::Eq, "store_v1".into())
        );
        assert_eq!(
            Codec::Sanitized.decode_name("bookstore_v1").as_deref(),
            Some("bookstore-v1")
        );
    }

    #[test]
    fn templates_decode_both_parts() {
        assert_eq!(
            KUMA.decode_name("store-v1_shop_svc_8080").as_deref(),
            Some("store-v1")
        );
        assert_eq!(
            KUMA.decode_namespace("store-v1_shop_svc_8080").as_deref(),
            Some("shop")
        );
        assert_eq!(KUMA.decode_name("localhost_8080"), None);
        assert_eq!(KUMA.decode_name("api_shop_svc_http"), None);
        assert_eq!(KUMA.decode_name("_shop_svc_80"), None);
        assert!(KUMA.combined() && !Codec::Plain.combined());
    }

    #[test]
    fn templates_encode_escaped_regexes() {
        assert_eq!(
            KUMA.encode(Some("shop"), Some("a.b")),
            (Op::Re, r"a\.b_shop_svc_[0-9]+".into())
        );
        assert_eq!(
            KUMA.encode(Some("shop"), None),
            (Op::Re, r".+_shop_svc_[0-9]+".into())
        );
        let osm = Codec::Template("{namespace}/{name}|{number}");
        assert_eq!(
            osm.encode(Some("shop"), Some("api")),
            (Op::Re, r"shop/api\|[0-9]+".into())
        );
        assert_eq!(osm.decode_name("shop/api|8080").as_deref(), Some("api"));
    }
}
