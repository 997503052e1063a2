//! [`Labels`]: the label set of one sample, kept in a [`LabelArena`] with the label sets of
//! the other samples of its answer; [`LabelPairs`], a set as the complete decoder reads it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The text of many label sets, one after another: what a [`LabelArena`] builds.
#[derive(Debug, Default)]
struct Text {
    /// Every name and value, concatenated: set after set, each in name order.
    text: String,
    /// Where each name and each value ends in `text` (two entries per label).
    ends: Vec<u32>,
}

impl Text {
    /// Records that a name or value ends here.
    fn mark_end(&mut self) {
        // an answer's text is far below 4 GiB; saturating keeps a corrupt one harmless
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// The `g`-th name or value of the whole text.
    fn part(&self, g: usize) -> &str {
        let start = if g == 0 { 0 } else { self.ends[g - 1] as usize };
        self.text
            .get(start..self.ends[g] as usize)
            .unwrap_or_default()
    }
}

/// The label sets of one answer being decoded, in one buffer: a sample's label set is an
/// [`Arc`] of the buffer and a range in it, so decoding and dropping an answer allocate
/// per piece of the answer rather than per sample.
#[derive(Debug, Default)]
pub(super) struct LabelArena {
    text: Text,
    /// The first part (index into `ends`) and the number of labels of each set pushed.
    sets: Vec<(u32, u32)>,
}

impl LabelArena {
    /// An arena for the label sets of about `bytes` of answer.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        LabelArena {
            text: Text {
                text: String::with_capacity(bytes),
                ends: Vec::with_capacity(bytes / 12),
            },
            sets: Vec::with_capacity(bytes / 96),
        }
    }

    /// Adds a label set (sorted here only if Prometheus did not send it in order).
    pub(super) fn push(&mut self, pairs: &mut [(Cow<'_, str>, Cow<'_, str>)]) {
        if !pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
            pairs.sort();
        }
        self.push_sorted(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    }

    /// Adds a label set whose pairs come in name order.
    fn push_sorted<'p>(&mut self, pairs: impl Iterator<Item = (&'p str, &'p str)>) {
        let first = self.text.ends.len();
        for (k, v) in pairs {
            self.text.text.push_str(k);
            self.text.mark_end();
            self.text.text.push_str(v);
            self.text.mark_end();
        }
        let parts = self.text.ends.len() - first;
        self.sets.push((first as u32, (parts / 2) as u32));
    }

    /// The number of label sets pushed.
    pub(super) fn len(&self) -> usize {
        self.sets.len()
    }

    /// The label sets pushed, in order, sharing the arena's buffer.
    pub(super) fn finish(mut self) -> impl Iterator<Item = Labels> {
        self.text.text.shrink_to_fit();
        self.text.ends.shrink_to_fit();
        let text = Arc::new(self.text);
        self.sets.into_iter().map(move |(first, len)| Labels {
            text: (len > 0).then(|| text.clone()),
            first,
            len,
        })
    }
}

/// The label set of one sample, sorted by name. Its names and values lie in a buffer
/// shared with the other label sets of its answer (see [`LabelArena`]).
#[derive(Clone, Default)]
pub struct Labels {
    /// The shared buffer (`None` for an empty set).
    text: Option<Arc<Text>>,
    /// The set's first part in the buffer.
    first: u32,
    /// The number of labels.
    len: u32,
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Labels {}

impl Labels {
    /// Builds a label set from pairs (sorted on construction).
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        v.sort_by(|a, b| (a.0.as_ref(), a.1.as_ref()).cmp(&(b.0.as_ref(), b.1.as_ref())));
        let mut arena = LabelArena::default();
        arena.push_sorted(v.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        arena.finish().next().unwrap_or_default()
    }

    /// The `i`-th name or value of this set.
    fn part(&self, i: usize) -> &str {
        match &self.text {
            Some(t) => t.part(self.first as usize + i),
            None => "",
        }
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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

    /// A rough size in bytes, for cache weighing: this set's share of its buffer.
    pub(super) fn approx_bytes(&self) -> usize {
        self.iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
            + 16
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON string, borrowed from the body unless it has escapes.
pub(super) struct Str<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads a label set (a JSON object of strings) into pairs borrowed from the body where
/// they can be, for the complete decoder to put in a [`LabelArena`].
pub(super) struct LabelPairs<'s, 'a>(pub(super) &'s mut Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for LabelPairs<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for LabelPairs<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of label names to values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some((Str(k), Str(v))) = m.next_entry()? {
            self.0.push((k, v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(a: &Labels, b: &Labels) -> bool {
        matches!((&a.text, &b.text), (Some(x), Some(y)) if Arc::ptr_eq(x, y))
    }

    #[test]
    fn an_arena_holds_many_sets_in_one_buffer() {
        let mut arena = LabelArena::with_capacity(64);
        let c = |s: &'static str| Cow::Borrowed(s);
        arena.push(&mut [(c("deployment"), c("web")), (c("le"), c("0.5"))]);
        arena.push(&mut []);
        // out of order, and one escaped value (owned)
        arena.push(&mut [(c("z"), Cow::Owned("q\"x".into())), (c("a"), c(""))]);
        assert_eq!(arena.len(), 3);
        let sets: Vec<Labels> = arena.finish().collect();
        assert_eq!(
            sets[0],
            Labels::from_pairs([("le", "0.5"), ("deployment", "web")])
        );
        assert_eq!(sets[0].get("le"), Some("0.5"));
        assert_eq!(sets[0].get("deployment"), Some("web"));
        assert_eq!(sets[0].get("a"), None);
        assert!(sets[1].is_empty() && sets[1] == Labels::default());
        assert_eq!(sets[1].iter().count(), 0);
        let pairs: Vec<_> = sets[2].iter().collect();
        assert_eq!(pairs, [("a", ""), ("z", "q\"x")]);
        assert!(shared(&sets[0], &sets[2]), "one buffer for the answer");
        assert_ne!(sets[0], sets[2]);
        // a set's weight is its own share, not the whole buffer's
        assert_eq!(sets[0].approx_bytes(), "deploymentweble0.5".len() + 16 + 16);
        assert_eq!(sets[0].clone(), sets[0]);
    }
}
