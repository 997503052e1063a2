//! Incremental decoding of instant-query answers. Prometheus writes its JSON while it
//! encodes a result, so the body of an answer arrives in pieces; a [`VectorStream`]
//! decodes every sample as soon as its bytes are in, and once the last piece arrives only
//! that piece is left to decode.
//!
//! The fast path reads the layout Prometheus prints: `{"status":"success","data":
//! {"resultType":"vector","result":[`, then `{"metric":{…},"value":[t,"v"]}` elements,
//! then `]}}`. Anything else (an error envelope, a scalar, warnings, another key order, a
//! truncated body) is left to the complete decoder ([`decode_vector`]) once the whole body
//! is in, so every answer decodes exactly as it would in one piece, only sooner.

use std::borrow::Cow;

use super::{decode_vector, parse_value, Labels, QueryError, Sample, Vector};

/// How Prometheus begins every successful vector answer.
const PREFIX: &[u8] = br#"{"status":"success","data":{"resultType":"vector","result":["#;

/// Why the fast path stopped.
#[derive(Debug)]
enum Stop {
    /// The bytes so far end inside a sample: wait for more.
    Incomplete,
    /// Not the layout the fast path reads: the complete decoder takes over.
    Unexpected,
}

type Step<T> = Result<T, Stop>;

/// A label name and value: borrowed from the body unless they had escapes.
type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Where a JSON string lies in the body (between its quotes), and whether it has escapes.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the end of [`PREFIX`].
    Prefix,
    /// Inside the result array (`first` until a sample has been read).
    Samples { first: bool },
    /// After the array's `]`: only the two closing braces may follow.
    Tail,
    /// The complete decoder will read the body.
    Fallback,
}

/// An instant-query answer being decoded while its body arrives: [`VectorStream::feed`]
/// each piece, then [`VectorStream::finish`].
#[derive(Debug)]
pub struct VectorStream {
    /// The body so far (kept whole for the complete decoder).
    body: Vec<u8>,
    /// How far the fast path has read.
    pos: usize,
    state: State,
    samples: Vec<Sample>,
    /// The body length at which to read on after a sample was cut off: once the unread
    /// tail has doubled (or grown by [`RETRY_BYTES`]), so that tiny pieces cannot make a
    /// long sample be re-read over and over.
    retry_at: usize,
}

/// The least growth of the body before a cut-off sample is read again.
const RETRY_BYTES: usize = 1024;

impl VectorStream {
    /// A decoder for a body of about `size_hint` bytes (its `Content-Length`, or 0).
    pub fn new(size_hint: usize) -> Self {
        VectorStream {
            body: Vec::with_capacity(size_hint.min(64 << 20)),
            pos: 0,
            state: State::Prefix,
            samples: Vec::new(),
            retry_at: 0,
        }
    }

    /// Takes the next piece of the body and decodes every sample it completes.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
        if self.body.len() >= self.retry_at {
            self.advance();
        }
    }

    /// The answer, once the whole body is in; `url` and `status` (the HTTP status) are
    /// for errors, as in [`decode_vector`].
    pub fn finish(mut self, url: &str, status: u16) -> Result<Vector, QueryError> {
        self.advance();
        if status == 200 && self.read_whole() {
            return Ok(Vector(self.samples));
        }
        decode_vector(url, status, &self.body)
    }

    /// Whether the fast path has read the whole answer.
    fn read_whole(&self) -> bool {
        self.state == State::Tail && closes_envelope(&self.body[self.pos..])
    }

    /// Reads as far as the body goes.
    fn advance(&mut self) {
        let (mut spans, mut pairs) = (Vec::new(), Vec::new());
        loop {
            match self.state {
                State::Prefix => {
                    let n = self.body.len().min(PREFIX.len());
                    if self.body[..n] != PREFIX[..n] {
                        self.state = State::Fallback;
                    } else if n < PREFIX.len() {
                        return;
                    } else {
                        self.pos = n;
                        self.state = State::Samples { first: true };
                    }
                }
                State::Samples { first } => {
                    let mut p = Parser {
                        b: &self.body,
                        i: self.pos,
                    };
                    match p.next_sample(first, &mut spans, &mut pairs) {
                        Ok(Some(sample)) => {
                            self.samples.push(sample);
                            self.pos = p.i;
                            self.state = State::Samples { first: false };
                        }
                        Ok(None) => {
                            self.pos = p.i;
                            self.state = State::Tail;
                        }
                        Err(Stop::Incomplete) => {
                            let unread = self.body.len() - self.pos;
                            self.retry_at = self.body.len() + unread.max(RETRY_BYTES);
                            return;
                        }
                        Err(Stop::Unexpected) => {
                            self.samples = Vec::new();
                            self.state = State::Fallback;
                        }
                    }
                }
                State::Tail | State::Fallback => return,
            }
        }
    }
}

/// Whether `rest` (after the result array) is just the two closing braces.
fn closes_envelope(rest: &[u8]) -> bool {
    let mut braces = rest.iter().filter(|b| !b.is_ascii_whitespace());
    braces.next() == Some(&b'}') && braces.next() == Some(&b'}') && braces.next().is_none()
}

/// A cursor over the body.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    /// The next byte that is not whitespace (not consumed).
    fn peek(&mut self) -> Step<u8> {
        while let Some(c) = self.b.get(self.i) {
            if !c.is_ascii_whitespace() {
                return Ok(*c);
            }
            self.i += 1;
        }
        Err(Stop::Incomplete)
    }

    /// Consumes `c`, the next byte that is not whitespace.
    fn expect(&mut self, c: u8) -> Step<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Stop::Unexpected)
        }
    }

    /// Consumes the object key `key` and its colon.
    fn key(&mut self, key: &str) -> Step<()> {
        let k = self.string()?;
        if !k.escaped && &self.b[k.start..k.end] == key.as_bytes() {
            self.expect(b':')
        } else {
            Err(Stop::Unexpected)
        }
    }

    /// A JSON string (its span: the text is checked once per sample). Inlined: returned
    /// through memory, the span costs more to copy out than to find.
    #[inline(always)]
    fn string(&mut self) -> Step<Span> {
        self.expect(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            match self.b.get(self.i) {
                None => return Err(Stop::Incomplete),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.i += 2;
                }
                Some(_) => self.i += 1,
            }
        }
        self.i += 1;
        Ok(Span {
            start,
            end: self.i - 1,
            escaped,
        })
    }

    /// Skips a JSON number (the sample's timestamp, which the answer does not need).
    fn number(&mut self) -> Step<()> {
        self.peek()?;
        let start = self.i;
        while let Some(c) = self.b.get(self.i) {
            if !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
                return if self.i > start {
                    Ok(())
                } else {
                    Err(Stop::Unexpected)
                };
            }
            self.i += 1;
        }
        Err(Stop::Incomplete)
    }

    /// The next sample of the result array, or `None` at its end. `spans` and `pairs` are
    /// scratch space for the label names and values.
    fn next_sample(
        &mut self,
        first: bool,
        spans: &mut Vec<Span>,
        pairs: &mut Vec<Pair<'a>>,
    ) -> Step<Option<Sample>> {
        match self.peek()? {
            b']' => {
                self.i += 1;
                return Ok(None);
            }
            b',' if !first => self.i += 1,
            b'{' if first => {}
            _ => return Err(Stop::Unexpected),
        }
        let start = self.i;
        self.expect(b'{')?;
        self.key("metric")?;
        self.expect(b'{')?;
        spans.clear();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                spans.push(self.string()?);
                self.expect(b':')?;
                spans.push(self.string()?);
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Stop::Unexpected),
                }
            }
        }
        self.expect(b',')?;
        self.key("value")?;
        self.expect(b'[')?;
        self.number()?;
        self.expect(b',')?;
        let value = self.string()?;
        self.expect(b']')?;
        self.expect(b'}')?;
        // the whole sample is in: check its text once, then take the strings from it
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Stop::Unexpected)?;
        let value = parse_value(&unquote(text, start, value)?).ok_or(Stop::Unexpected)?;
        pairs.clear();
        for kv in spans.chunks_exact(2) {
            pairs.push((unquote(text, start, kv[0])?, unquote(text, start, kv[1])?));
        }
        Ok(Some(Sample {
            labels: Labels::from_decoded(pairs),
            value,
        }))
    }
}

/// The string at `s` in `text`, a sample's text that begins at body offset `start`:
/// borrowed unless it has escapes. Inlined for the reason [`Parser::string`] is.
#[inline(always)]
fn unquote(text: &str, start: usize, s: Span) -> Step<Cow<'_, str>> {
    if s.escaped {
        // rare: let serde_json apply the escapes (the quotes included)
        let quoted = text.get(s.start - start - 1..s.end - start + 1);
        serde_json::from_str(quoted.ok_or(Stop::Unexpected)?)
            .map(Cow::Owned)
            .map_err(|_| Stop::Unexpected)
    } else {
        let raw = text.get(s.start - start..s.end - start);
        raw.map(Cow::Borrowed).ok_or(Stop::Unexpected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `body` fed in pieces of `size` bytes.
    fn fed(body: &[u8], size: usize) -> VectorStream {
        let mut s = VectorStream::new(0);
        for piece in body.chunks(size.max(1)) {
            s.feed(piece);
        }
        s
    }

    fn streamed(body: &[u8], size: usize, status: u16) -> Result<Vector, QueryError> {
        fed(body, size).finish("u", status)
    }

    /// Every split of `body` decodes as the complete decoder decodes it, by the fast path
    /// (`fast`) or not.
    fn same_as_complete(body: &str, fast: bool) {
        let want = decode_vector("u", 200, body.as_bytes());
        for size in 1..=body.len() {
            let mut s = fed(body.as_bytes(), size);
            s.advance();
            assert_eq!(s.read_whole(), fast, "{body} in pieces of {size}");
            let got = s.finish("u", 200);
            match (&want, &got) {
                (Ok(w), Ok(g)) => {
                    assert_eq!(w.0.len(), g.0.len(), "{body} in pieces of {size}");
                    for (a, b) in w.0.iter().zip(&g.0) {
                        assert_eq!(a.labels, b.labels, "{body} in pieces of {size}");
                        assert!(
                            a.value == b.value || (a.value.is_nan() && b.value.is_nan()),
                            "{body} in pieces of {size}"
                        );
                    }
                }
                (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string()),
                _ => panic!("{body} in pieces of {size}: {want:?} vs {got:?}"),
            }
        }
    }

    #[test]
    fn prometheus_layout_decodes_in_any_pieces() {
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"deployment":"web","le":"+Inf","namespace":"default"},"value":[1795347090.123,"12"]},{"metric":{},"value":[1795347090,"NaN"]},{"metric":{"le":"0.5"},"value":[1795347090,"-Inf"]}]}}"#,
            true,
        );
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            true,
        );
    }

    #[test]
    fn fast_path_reads_prometheus_layout_itself() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"2.5"]}]}}"#;
        let mut s = VectorStream::new(body.len());
        s.feed(&body.as_bytes()[..body.len() - 3]);
        assert_eq!(s.samples.len(), 1, "decoded before the body is complete");
        s.feed(&body.as_bytes()[body.len() - 3..]);
        s.advance();
        assert!(s.read_whole());
        let v = s.finish("u", 200).unwrap();
        assert_eq!(v.0[0].labels.get("a"), Some("1"));
        assert_eq!(v.0[0].value, 2.5);
    }

    #[test]
    fn a_long_sample_in_tiny_pieces_is_read_a_few_times_only() {
        let long = "x".repeat(1 << 20);
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"a":"{long}"}},"value":[1,"7"]}}]}}}}"#
        );
        let mut s = VectorStream::new(0);
        let mut attempts = 0;
        for byte in body.as_bytes().chunks(1) {
            let before = s.retry_at;
            s.feed(byte);
            attempts += usize::from(s.retry_at != before);
        }
        assert!(attempts < 64, "{attempts} attempts for a 1 MiB sample");
        let v = s.finish("u", 200).unwrap();
        assert_eq!(v.0[0].labels.get("a").map(str::len), Some(1 << 20));
        assert_eq!(v.0[0].value, 7.0);
    }

    #[test]
    fn escapes_unicode_and_unsorted_labels() {
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"z":"q\"uo\\te\u00e9","a":"ünï"},"value":[1,"3"]}]}}"#,
            true,
        );
        let v = streamed(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"z":"q\"x","a":"ü"},"value":[1,"3"]}]}}"#.as_bytes(),
            5,
            200,
        )
        .unwrap();
        assert_eq!(v.0[0].labels.iter().next(), Some(("a", "ü")));
        assert_eq!(v.0[0].labels.get("z"), Some("q\"x"));
    }

    #[test]
    fn other_layouts_fall_back_to_the_complete_decoder() {
        // warnings after the data, pretty printing, a scalar, another key order
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"2"]}]},"warnings":["w"]}"#,
            false,
        );
        same_as_complete(
            "{ \"status\": \"success\", \"data\": { \"resultType\": \"vector\", \"result\": [ { \"metric\": { \"a\": \"1\" }, \"value\": [ 1, \"2\" ] } ] } }",
            false,
        );
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"4"]}}"#,
            false,
        );
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"2"],"metric":{"a":"1"}}]}}"#,
            false,
        );
    }

    #[test]
    fn errors_are_the_complete_decoders() {
        // truncated, bad value, error envelope, not JSON
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"2"]}"#,
            false,
        );
        same_as_complete(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"x"]}]}}"#,
            false,
        );
        same_as_complete(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            false,
        );
        same_as_complete("<html>bad gateway</html>", false);
        let e = streamed(
            br#"{"status":"error","errorType":"timeout","error":"t"}"#,
            7,
            503,
        )
        .unwrap_err();
        assert!(
            matches!(e, QueryError::Rejected { status: 503, .. }),
            "{e:?}"
        );
    }
}
