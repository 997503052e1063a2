//! Incremental decoding of instant-query answers. Prometheus writes its JSON while it
//! encodes a result, so the body of an answer arrives in pieces; a [`VectorStream`]
//! decodes every sample as soon as its bytes are in, and once the last piece arrives only
//! that piece is left to decode.
//!
//! The fast path reads the layout Prometheus prints: `{"status":"success","data":
//! {"resultType":"vector","result":[`, then `{"metric":{…},"value":[t,"v"]}` elements,
//! then `]}}`. It reads each piece where it lies; only a sample cut in two by the end of a
//! piece is copied, with the head of the next piece, to be read whole. Anything else (an
//! error envelope, a scalar, warnings, another key order, a truncated body) is left to the
//! complete decoder ([`decode_vector`]) once the whole body is in, so every answer decodes
//! exactly as it would in one piece, only sooner.

use std::borrow::Cow;

use bytes::Bytes;

use super::labels::LabelArena;
use super::{decode_vector, parse_value, QueryError, Sample, Vector};

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
    /// Inside [`PREFIX`], this many bytes of it read.
    Prefix(usize),
    /// Inside the result array (`first` until a sample has been read).
    Samples { first: bool },
    /// After the array's `]`, this many of the two closing braces read.
    Tail(u8),
    /// The complete decoder will read the body.
    Fallback,
}

/// An instant-query answer being decoded while its body arrives: [`VectorStream::feed`]
/// each piece, then [`VectorStream::finish`].
#[derive(Debug)]
pub struct VectorStream {
    /// Every piece so far, shared rather than copied, for the complete decoder.
    pieces: Vec<Bytes>,
    /// A sample cut off by the end of a piece, followed by what has been taken of the
    /// pieces after it (empty while the fast path reads pieces where they lie).
    carry: Vec<u8>,
    state: State,
    samples: Vec<Sample>,
    /// The length `carry` must reach before the cut-off sample is read again: once it has
    /// doubled (or grown by [`RETRY_BYTES`]), so that tiny pieces cannot make a long sample
    /// be re-read over and over.
    retry_at: usize,
}

/// The least growth of `carry` before a cut-off sample is read again.
const RETRY_BYTES: usize = 1024;

/// Bytes of answer per sample reserved for ahead of time (Prometheus prints 90–200 per
/// sample of the plans' queries); what is left over is given back at the end.
const BYTES_PER_SAMPLE: usize = 96;

impl VectorStream {
    /// A decoder for a body of about `size_hint` bytes (its `Content-Length`, or 0).
    pub fn new(size_hint: usize) -> Self {
        VectorStream {
            pieces: Vec::new(),
            carry: Vec::new(),
            state: State::Prefix(0),
            samples: Vec::with_capacity(size_hint.min(64 << 20) / BYTES_PER_SAMPLE),
            retry_at: 0,
        }
    }

    /// Takes the next piece of the body and decodes every sample it completes.
    pub fn feed(&mut self, piece: Bytes) {
        self.pieces.push(piece.clone());
        if self.state == State::Fallback {
            return;
        }
        if self.samples.capacity() - self.samples.len() < piece.len() / BYTES_PER_SAMPLE {
            self.samples.reserve(piece.len() / BYTES_PER_SAMPLE);
        }
        let mut at = 0;
        if !self.carry.is_empty() {
            match self.complete_carry(&piece) {
                Some(resume) => at = resume,
                None => return,
            }
        }
        if let Some(cut) = self.scan(&piece[at..]) {
            self.cut_off(&piece[at + cut..]);
        }
    }

    /// Completes the cut-off sample in `carry` from the head of `piece`; returns where in
    /// `piece` reading goes on, or `None` once all of `piece` is in `carry`.
    fn complete_carry(&mut self, piece: &[u8]) -> Option<usize> {
        // how much of `piece` is in `carry` (at its end)
        let mut taken = 0;
        loop {
            let want = self.retry_at.saturating_sub(self.carry.len()).max(1);
            let take = want.min(piece.len() - taken);
            self.carry.extend_from_slice(&piece[taken..taken + take]);
            taken += take;
            if self.carry.len() < self.retry_at {
                return None;
            }
            let carry = std::mem::take(&mut self.carry);
            let Some(cut) = self.scan(&carry) else {
                return Some(taken);
            };
            let unread = carry.len() - cut;
            if unread <= taken {
                // the cut-off sample is read, and what follows lies in `piece`
                return Some(taken - unread);
            }
            self.carry = carry;
            self.cut_off_in_carry(cut);
        }
    }

    /// Keeps `rest`, the start of a sample the piece cut off, to read once more is in.
    fn cut_off(&mut self, rest: &[u8]) {
        self.carry.extend_from_slice(rest);
        self.wait_for_more();
    }

    /// Drops what was read of `carry`, up to `cut`, and waits for it to grow.
    fn cut_off_in_carry(&mut self, cut: usize) {
        self.carry.drain(..cut);
        self.wait_for_more();
    }

    /// Reads `carry` again only once it has doubled, or grown by [`RETRY_BYTES`].
    fn wait_for_more(&mut self) {
        self.retry_at = self.carry.len() + self.carry.len().max(RETRY_BYTES);
    }

    /// Reads `buf`, the bytes after those read so far, as far as it goes; returns where
    /// in `buf` a sample begins that `buf` cuts off.
    fn scan(&mut self, buf: &[u8]) -> Option<usize> {
        // the label sets of the samples read here share one buffer
        let mut arena = LabelArena::with_capacity(buf.len());
        let mut values = Vec::with_capacity(buf.len() / BYTES_PER_SAMPLE);
        let cut = self.scan_into(buf, &mut arena, &mut values);
        if self.state == State::Fallback {
            self.samples = Vec::new();
        } else if arena.len() > 0 {
            let read = arena.finish().zip(values);
            self.samples
                .extend(read.map(|(labels, value)| Sample { labels, value }));
        }
        cut
    }

    /// [`VectorStream::scan`], with the label sets and values of the samples read put in
    /// `arena` and `values`.
    fn scan_into(
        &mut self,
        buf: &[u8],
        arena: &mut LabelArena,
        values: &mut Vec<f64>,
    ) -> Option<usize> {
        let mut pos = 0;
        // room for the label sets of the plans' queries (up to 8 labels)
        let (mut spans, mut pairs) = (Vec::with_capacity(16), Vec::with_capacity(8));
        loop {
            match self.state {
                State::Prefix(read) => {
                    let n = buf.len().min(PREFIX.len() - read);
                    if buf[..n] != PREFIX[read..read + n] {
                        self.state = State::Fallback;
                    } else if read + n < PREFIX.len() {
                        self.state = State::Prefix(read + n);
                        return None;
                    } else {
                        pos = n;
                        self.state = State::Samples { first: true };
                    }
                }
                State::Samples { first } => {
                    let mut p = Parser { b: buf, i: pos };
                    match p.next_sample(first, &mut spans, &mut pairs) {
                        Ok(Some(value)) => {
                            arena.push(&mut pairs);
                            values.push(value);
                            pos = p.i;
                            self.state = State::Samples { first: false };
                        }
                        Ok(None) => {
                            pos = p.i;
                            self.state = State::Tail(0);
                        }
                        Err(Stop::Incomplete) => return Some(pos),
                        Err(Stop::Unexpected) => self.state = State::Fallback,
                    }
                }
                State::Tail(mut braces) => {
                    for c in &buf[pos..] {
                        if c.is_ascii_whitespace() {
                            continue;
                        }
                        if *c != b'}' || braces == 2 {
                            self.state = State::Fallback;
                            return None;
                        }
                        braces += 1;
                    }
                    self.state = State::Tail(braces);
                    return None;
                }
                State::Fallback => return None,
            }
        }
    }

    /// The answer, once the whole body is in; `url` and `status` (the HTTP status) are
    /// for errors, as in [`decode_vector`].
    pub fn finish(mut self, url: &str, status: u16) -> Result<Vector, QueryError> {
        self.settle();
        if status == 200 && self.read_whole() {
            let mut samples = self.samples;
            if samples.capacity() - samples.len() > samples.len() / 8 {
                samples.shrink_to_fit();
            }
            return Ok(Vector(samples));
        }
        let body = self.pieces.concat();
        decode_vector(url, status, &body)
    }

    /// Reads what is left in `carry` now that no more is coming.
    fn settle(&mut self) {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            if self.scan(&carry).is_some() {
                // a sample cut off by the end of the body
                self.state = State::Fallback;
            }
        }
    }

    /// Whether the fast path has read the whole answer.
    fn read_whole(&self) -> bool {
        self.state == State::Tail(2) && self.carry.is_empty()
    }
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

    /// The value of the next sample of the result array, its labels put in `pairs`, or
    /// `None` at the array's end. `spans` is scratch space.
    fn next_sample(
        &mut self,
        first: bool,
        spans: &mut Vec<Span>,
        pairs: &mut Vec<Pair<'a>>,
    ) -> Step<Option<f64>> {
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
        Ok(Some(value))
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
            s.feed(Bytes::copy_from_slice(piece));
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
            s.settle();
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
        s.feed(Bytes::copy_from_slice(&body.as_bytes()[..body.len() - 3]));
        assert_eq!(s.samples.len(), 1, "decoded before the body is complete");
        s.feed(Bytes::copy_from_slice(&body.as_bytes()[body.len() - 3..]));
        s.settle();
        assert!(s.read_whole());
        let v = s.finish("u", 200).unwrap();
        assert_eq!(v.0[0].labels.get("a"), Some("1"));
        assert_eq!(v.0[0].value, 2.5);
    }

    #[test]
    fn long_answers_are_read_where_they_lie() {
        let mut body =
            String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
        for i in 0..400 {
            if i > 0 {
                body.push(',');
            }
            let label = "x".repeat(i % 37);
            body.push_str(&format!(
                r#"{{"metric":{{"deployment":"app-{i}","le":"{}","pad":"{label}"}},"value":[1795000000.5,"{i}.25"]}}"#,
                i % 26
            ));
        }
        body.push_str("]}}");
        let want = decode_vector("u", 200, body.as_bytes()).unwrap();
        for size in [
            1,
            2,
            3,
            61,
            127,
            128,
            1000,
            1023,
            1024,
            1500,
            4096,
            8191,
            body.len(),
        ] {
            let mut s = VectorStream::new(0);
            let mut largest_carry = 0;
            for piece in body.as_bytes().chunks(size) {
                s.feed(Bytes::copy_from_slice(piece));
                largest_carry = largest_carry.max(s.carry.len());
            }
            // a cut-off sample (under 200 bytes here) and at most what the retry rule takes
            assert!(
                largest_carry < 200 + 2 * RETRY_BYTES,
                "{largest_carry} in pieces of {size}"
            );
            s.settle();
            assert!(s.read_whole(), "pieces of {size}");
            let got = s.finish("u", 200).unwrap();
            assert_eq!(got.0.len(), want.0.len(), "pieces of {size}");
            for (a, b) in want.0.iter().zip(&got.0) {
                assert_eq!(
                    (&a.labels, a.value),
                    (&b.labels, b.value),
                    "pieces of {size}"
                );
            }
        }
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
            s.feed(Bytes::copy_from_slice(byte));
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
