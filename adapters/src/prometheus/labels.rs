//! [`Labels`]: the label set of one sample, in one buffer, and its serde decoding.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The label set of one sample, sorted by name. Names and values share one buffer, so a
/// decoded sample costs two allocations however many labels it has.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Every name and value, concatenated in name order.
    text: String,
    /// Where each name and each value ends in `text` (two entries per label).
    ends: Vec<u32>,
}

impl Labels {
    /// Builds a label set from pairs (sorted on construction).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        v.sort_by(|a, b| (a.0.as_ref(), a.1.as_ref()).cmp(&(b.0.as_ref(), b.1.as_ref())));
        let mut labels = Labels::default();
        for (k, v) in &v {
            labels.text.push_str(k.as_ref());
            labels.mark_end();
            labels.text.push_str(v.as_ref());
            labels.mark_end();
        }
        labels
    }

    /// Builds a label set from decoded pairs with one allocation for the text and one for
    /// the ends (sorted here only if Prometheus did not send them in order).
    pub(super) fn from_decoded(pairs: &[(Cow<'_, str>, Cow<'_, str>)]) -> Self {
        if !pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
            return Labels::from_pairs(pairs.iter().map(|(k, v)| (k, v)));
        }
        let mut labels = Labels {
            text: String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len()).sum()),
            ends: Vec::with_capacity(2 * pairs.len()),
        };
        for (k, v) in pairs {
            labels.text.push_str(k);
            labels.mark_end();
            labels.text.push_str(v);
            labels.mark_end();
        }
        labels
    }

    /// Records that a name or value ends here.
    fn mark_end(&mut self) {
        // a label set is far below 4 GiB; saturating keeps a corrupt one harmless
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// The `i`-th name or value.
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.part(2 * mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.part(2 * mid + 1)),
            }
        }
        None
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).map(|i| (self.part(2 * i), self.part(2 * i + 1)))
    }

    /// A rough size in bytes, for cache weighing.
    pub(super) fn approx_bytes(&self) -> usize {
        self.text.len() + 4 * self.ends.len()
    }

    /// Whether the names are in order (Prometheus sends them so).
    fn is_sorted(&self) -> bool {
        (1..self.len()).all(|i| self.part(2 * (i - 1)) <= self.part(2 * i))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Appends a JSON string to a buffer without an intermediate allocation.
struct AppendStr<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Labels, A::Error> {
                let mut labels = Labels {
                    text: String::with_capacity(96),
                    ends: Vec::with_capacity(2 * m.size_hint().unwrap_or(6)),
                };
                while m.next_key_seed(AppendStr(&mut labels.text))?.is_some() {
                    labels.mark_end();
                    m.next_value_seed(AppendStr(&mut labels.text))?;
                    labels.mark_end();
                }
                if labels.is_sorted() {
                    Ok(labels)
                } else {
                    Ok(Labels::from_pairs(labels.iter()))
                }
            }
        }
        d.deserialize_map(V)
    }
}
