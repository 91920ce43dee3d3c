//! Flat: a venue frame's members read straight from its text, the fast path
//! in front of serde_json.
//!
//! The invariant: the fast path never decides anything serde_json would
//! decide differently. It accepts only a strict subset of JSON, the shape
//! venues actually send (objects and arrays, strings without escapes, numbers
//! in the JSON grammar, `true`/`false`/`null`, at most [`MAX_DEPTH`] deep),
//! validates the whole frame, and hands out each member's raw text. Anything
//! outside that subset ([`Unsupported`]): an escape, a control character, a
//! malformed token, a duplicate field, a value of an unexpected type, makes
//! the venue parse the frame again with serde_json, whose answer (a value or
//! the error) is then the only one.
//!
//! Why by hand: a venue frame is a flat object of 10-20 members of which a
//! parser keeps half. Measured on this machine kind, one Coinbase ticker (370
//! bytes) into the members the parser keeps, medians in one run: serde_json
//! 570-850 ns, sonic-rs 0.5 5-10 % less without `-C target-cpu=native`
//! (~20 % less with it, which a wheel cannot assume), simd-json 1.5x
//! serde_json's time (and it reads numbers as f64, which loses digits); this
//! scan about half of serde_json's time (436 against 897 ns, loaded machine).
//! It compares 8 bytes at a time for the end of a string and builds nothing.

/// The frame is outside the fast path's subset: parse it with serde_json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// Nesting deeper than this is left to serde_json.
pub const MAX_DEPTH: usize = 16;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `x` equal to zero is set (the first set bit is
/// exact; bits above it may be false positives, so only the first is used).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Index of the first `"`, `\` or control character (< 0x20) at or after
/// `i`, or `b.len()`: 16 bytes at a time with SSE2 (part of every x86_64
/// CPU, so a wheel may assume it), then 8 at a time, then by byte.
#[inline(always)]
fn string_stop(b: &[u8], mut i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        while i + 16 <= b.len() {
            // SAFETY: `i + 16 <= b.len()`, so the 16 bytes read are inside
            // `b`; `loadu` has no alignment requirement; SSE2 is enabled
            // (the cfg above), which the other intrinsics need.
            #[allow(unsafe_code)]
            let mask = unsafe {
                let x = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
                let escape = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
                // x <= 0x1f unsigned: min(x, 0x1f) == x.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, escape), control)) as u32
            };
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w);
        let hit = zero_bytes(x ^ (ONES * u64::from(b'"')))
            | zero_bytes(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..=0x1f) {
        i += 1;
    }
    i
}

/// A cursor over one frame's text.
struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// Skips whitespace. Venues send none between tokens, so the common
    /// case is one comparison (every whitespace byte is <= b' ').
    #[inline(always)]
    fn ws(&mut self) {
        if self.b.get(self.i).is_some_and(|&c| c <= b' ') {
            self.ws_run();
        }
    }

    #[cold]
    fn ws_run(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Result<(), Unsupported> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// A string without escapes; returns its contents (no quotes).
    #[inline(always)]
    fn string(&mut self) -> Result<&'a str, Unsupported> {
        self.eat(b'"')?;
        let start = self.i;
        let end = string_stop(self.b, start);
        if self.b.get(end) != Some(&b'"') {
            return Err(Unsupported); // an escape, a control character or the end
        }
        self.i = end + 1;
        // Both ends are ASCII quotes, so these are char boundaries.
        Ok(&self.text[start..end])
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// A number in the JSON grammar: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<(), Unsupported> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let first = self.peek();
        match self.digits() {
            0 => return Err(Unsupported),
            1 => {}
            _ if first == Some(b'0') => return Err(Unsupported), // leading zero
            _ => {}
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(Unsupported);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Unsupported);
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Unsupported> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// Any value (after whitespace); returns its raw text. A string, the
    /// most common value, is read inline; anything else out of line.
    #[inline(always)]
    fn value(&mut self, depth: usize) -> Result<&'a str, Unsupported> {
        self.ws();
        let start = self.i;
        if self.peek() == Some(b'"') {
            self.string()?;
            return Ok(&self.text[start..self.i]);
        }
        self.other_value(depth)
    }

    /// A value that is not a string (after whitespace): a number, a
    /// literal, an object or an array; returns its raw text.
    fn other_value(&mut self, depth: usize) -> Result<&'a str, Unsupported> {
        let start = self.i;
        match self.peek() {
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(Unsupported);
                }
                self.object(depth + 1, &mut |_, _| Ok(()))?;
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(Unsupported);
                }
                self.array(depth + 1, &mut |_| Ok(()))?;
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            _ => self.number()?,
        }
        Ok(&self.text[start..self.i])
    }

    /// An object at the cursor (after whitespace): `member(key, raw)` for each.
    fn object(
        &mut self,
        depth: usize,
        member: &mut impl FnMut(&'a str, &'a str) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            let raw = self.value(depth)?;
            member(key, raw)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsupported),
            }
        }
    }

    /// An array at the cursor (after whitespace): `element(raw)` for each.
    fn array(
        &mut self,
        depth: usize,
        element: &mut impl FnMut(&'a str) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        self.ws();
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let raw = self.value(depth)?;
            element(raw)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsupported),
            }
        }
    }

    /// The top-level object, its member `rows_key` read as rows when it is
    /// an array (see [`object_rows`]).
    fn object_rows(
        &mut self,
        rows_key: &str,
        event: &mut impl FnMut(Event<'a>) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let raw = if key == rows_key && self.peek() == Some(b'[') {
                let start = self.i;
                self.rows(event)?;
                &self.text[start..self.i]
            } else {
                self.value(0)?
            };
            event(Event::Member(key, raw))?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsupported),
            }
        }
    }

    /// An array of objects at the cursor, each object's members handed out
    /// as they are read (an element that is not an object: [`Unsupported`]).
    fn rows(
        &mut self,
        event: &mut impl FnMut(Event<'a>) -> Result<(), Unsupported>,
    ) -> Result<(), Unsupported> {
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'{') {
                return Err(Unsupported);
            }
            event(Event::Row)?;
            self.object(2, &mut |key, raw| event(Event::RowMember(key, raw)))?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Unsupported),
            }
        }
    }

    /// Only whitespace may follow the top-level value.
    fn end(&mut self) -> Result<(), Unsupported> {
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }
}

/// Calls `member(key, raw_value)` for each member of the JSON object `text`,
/// in order, after checking the whole text is in the fast path's subset (see
/// the module docs); `raw_value` is the member's text: a string with its
/// quotes, a number as written, a literal, or a nested object or array.
pub fn object<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, &'a str) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    s.object(0, &mut member)?;
    s.end()
}

/// Calls `element(raw_value)` for each element of the JSON array `text`
/// (see [`object`]).
pub fn array<'a>(
    text: &'a str,
    mut element: impl FnMut(&'a str) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    s.array(0, &mut element)?;
    s.end()
}

/// What [`object_rows`] hands out, in the frame's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A member of the top-level object: its key and raw text (the rows
    /// member comes after its rows, with the whole array's text).
    Member(&'a str, &'a str),
    /// A row of the rows member begins.
    Row,
    /// A member of the current row: its key and raw text.
    RowMember(&'a str, &'a str),
}

/// [`object`] for a frame whose member `rows_key` is an array of objects
/// (BitMEX's `data`): each row's members are handed out while the frame is
/// read, so the rows are scanned once, not once to check the frame and
/// again to read them. When that member is not an array it is an ordinary
/// member; an element that is not an object is [`Unsupported`].
pub fn object_rows<'a>(
    text: &'a str,
    rows_key: &str,
    mut event: impl FnMut(Event<'a>) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    s.object_rows(rows_key, &mut event)?;
    s.end()
}

/// A string member's contents; `None` for `null` (serde's `Option<&str>`).
pub fn opt_str(raw: &str) -> Result<Option<&str>, Unsupported> {
    match raw.as_bytes().first() {
        Some(b'"') => Ok(Some(&raw[1..raw.len() - 1])),
        Some(b'n') => Ok(None),
        _ => Err(Unsupported),
    }
}

/// An unsigned integer member; `None` for `null` (serde's `Option<u64>`).
/// Anything else (a sign, a fraction, an exponent, beyond u64) is left to
/// serde_json.
pub fn opt_u64(raw: &str) -> Result<Option<u64>, Unsupported> {
    if raw == "null" {
        return Ok(None);
    }
    let mut n: u64 = 0;
    for c in raw.bytes() {
        if !c.is_ascii_digit() {
            return Err(Unsupported);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(Unsupported)?;
    }
    if raw.is_empty() {
        return Err(Unsupported);
    }
    Ok(Some(n))
}

/// A raw member for a price or size; `None` for `null` (serde's
/// `Option<&RawValue>`, which reads `null` as `None`).
pub fn opt_raw(raw: &str) -> Option<&str> {
    (raw != "null").then_some(raw)
}

/// Sets `field` in a seen-mask; a field seen twice is serde's "duplicate
/// field" error, so it is left to serde_json.
#[inline(always)]
pub fn once(seen: &mut u32, field: u32) -> Result<(), Unsupported> {
    let bit = 1 << field;
    if *seen & bit != 0 {
        return Err(Unsupported);
    }
    *seen |= bit;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Result<Vec<(String, String)>, Unsupported> {
        let mut v = Vec::new();
        object(text, |k, r| {
            v.push((k.to_string(), r.to_string()));
            Ok(())
        })?;
        Ok(v)
    }

    #[test]
    fn members_come_with_their_raw_text_in_order() {
        let got = members(
            r#" { "a" : "x y" , "b":-1.5e+3,"c":[1,{"d":null}],"e":true,"f":{}, "g":[] } "#,
        )
        .unwrap();
        let want = [
            ("a", r#""x y""#),
            ("b", "-1.5e+3"),
            ("c", r#"[1,{"d":null}]"#),
            ("e", "true"),
            ("f", "{}"),
            ("g", "[]"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, r), (wk, wr)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), r.as_str()), (wk, wr));
        }
        assert_eq!(members("{}").unwrap(), vec![]);
        let mut rows = Vec::new();
        array(r#"[{"x":1}, 2]"#, |r| {
            rows.push(r.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, [r#"{"x":1}"#, "2"]);
    }

    #[test]
    fn rows_are_handed_out_member_by_member_before_their_array() {
        let mut got = Vec::new();
        object_rows(
            r#"{"t":"q","data":[{"a":1,"b":"x"}, {"c":[2]}],"z":null}"#,
            "data",
            |e| {
                got.push(format!("{e:?}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r#"Member("t", "\"q\"")"#,
                "Row",
                r#"RowMember("a", "1")"#,
                r#"RowMember("b", "\"x\"")"#,
                "Row",
                r#"RowMember("c", "[2]")"#,
                r#"Member("data", "[{\"a\":1,\"b\":\"x\"}, {\"c\":[2]}]")"#,
                r#"Member("z", "null")"#,
            ]
        );
        let member = |text: &str| {
            let mut got = Vec::new();
            object_rows(text, "data", |e| {
                got.push(format!("{e:?}"));
                Ok(())
            })
            .map(|()| got)
        };
        assert_eq!(
            member(r#"{"data":null}"#).unwrap(),
            [r#"Member("data", "null")"#]
        );
        assert_eq!(
            member(r#"{"data":[]}"#).unwrap(),
            [r#"Member("data", "[]")"#]
        );
        for bad in [
            r#"{"data":[1]}"#,
            r#"{"data":[{}],}"#,
            r#"{"data":[{},]}"#,
            r#"{"data":[{"a":}]}"#,
            r#"{"data":[{}]"#,
        ] {
            assert_eq!(member(bad), Err(Unsupported), "{bad}");
        }
    }

    #[test]
    fn strings_longer_than_a_word_end_at_the_right_quote() {
        for n in 0..40 {
            let s = "é".repeat(n / 2) + &"x".repeat(n);
            let text = format!(r#"{{"k":"{s}","n":1}}"#);
            let got = members(&text).unwrap();
            assert_eq!(got[0].1, format!("\"{s}\""), "{n}");
            assert_eq!(got[1].1, "1");
        }
    }

    #[test]
    fn what_serde_json_would_refuse_or_decode_is_left_to_it() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"a":1"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1}x"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":NaN}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a\n":1}"#,
            "{\"a\":\"x\ty\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(members(text), Err(Unsupported), "{text:?}");
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_err()
                    || text.contains('\\')
                    || text.contains('\t'),
                "{text:?} is a valid JSON object only an escape keeps from the fast path"
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(members(&format!(r#"{{"a":{deep}}}"#)), Err(Unsupported));
    }

    #[test]
    fn typed_members_read_like_serde() {
        assert_eq!(opt_u64("18446744073709551615"), Ok(Some(u64::MAX)));
        assert_eq!(opt_u64("18446744073709551616"), Err(Unsupported));
        assert_eq!(opt_u64("null"), Ok(None));
        for bad in ["-1", "1.0", "1e3", "\"1\"", "true"] {
            assert_eq!(opt_u64(bad), Err(Unsupported), "{bad}");
        }
        assert_eq!(opt_str(r#""BTC-USD""#), Ok(Some("BTC-USD")));
        assert_eq!(opt_str("null"), Ok(None));
        assert_eq!(opt_str("1"), Err(Unsupported));
        assert_eq!(opt_raw("null"), None);
        assert_eq!(opt_raw(r#""1.5""#), Some(r#""1.5""#));
        let mut seen = 0;
        assert_eq!(once(&mut seen, 3), Ok(()));
        assert_eq!(once(&mut seen, 3), Err(Unsupported));
    }

    /// Seeds: frames of each venue as documented and as the tests know them.
    const SEEDS: [(usize, &str); 10] = [
        (
            0,
            r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","open_24h":"1310.79","best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}"#,
        ),
        (
            0,
            r#"{"type":"ticker","sequence":6,"product_id":"ZIL-USDC","price":0.0215,"best_bid":"0.0214","best_bid_size":"10","best_ask":null,"best_ask_size":null,"trade_id":7,"last_size":"100"}"#,
        ),
        (
            0,
            r#"{"type":"error","message":"Failed to subscribe","reason":"ZZZ-USD is not a valid product"}"#,
        ),
        (
            1,
            r#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#,
        ),
        (
            1,
            r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":1672515782136,"m":true,"M":true}}"#,
        ),
        (
            1,
            r#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","s":"BNBBTC","a":12345,"p":"0.001","q":"100"}}"#,
        ),
        (1, r#"{"result":null,"id":1}"#),
        (
            2,
            r#"{"table":"quote","action":"insert","data":[{"timestamp":"2026-01-01T00:00:00.000Z","symbol":"XBTUSD","bidSize":100,"bidPrice":50000.5,"askPrice":50001,"askSize":2.5e2}]}"#,
        ),
        (
            2,
            r#"{"table":"trade","action":"insert","data":[{"timestamp":"2026-01-02T03:04:05.123Z","symbol":"XBTUSD","side":"Buy","size":3,"price":60000.5,"trdMatchID":"00000000-006d-1000-0000-000000000001"}],"success":null}"#,
        ),
        (
            2,
            r#"{"data":[{"symbol":"XBTUSD","size":3,"price":60000.5,"trdMatchID":"00000000-006d-1000-0000-00000000000A"},{"symbol":"ETHUSD","size":1,"price":3000,"trdMatchID":"x"}],"table":"trade","action":"insert"}"#,
        ),
    ];

    /// Pieces spliced into frames: each a way JSON can be odd or wrong.
    const PIECES: [&str; 30] = [
        "\\",
        "\"",
        ",",
        ":",
        "{",
        "}",
        "[",
        "]",
        " ",
        "\n",
        "\t",
        "0",
        "-",
        ".",
        "e",
        "null",
        "true",
        "1e400",
        "\"x\"",
        "\\u0031",
        "01",
        "\"type\":\"ticker\",",
        "\"best_bid\":\"1\",",
        "\"u\":5,",
        "\"s\":\"X\",",
        "\"id\":1e999,",
        "\"data\":[[1]],",
        "\"symbol\":null,",
        "é",
        "\u{7f}",
    ];

    fn outcome(venue: usize, frame: &str, try_fast: bool) -> String {
        let mut p = super::super::Parsed::default();
        let r = match venue {
            0 => super::super::coinbase::read(frame, &mut p, try_fast),
            1 => super::super::binance::read(frame, &mut p, try_fast),
            _ => super::super::bitmex::read(frame, &mut p, try_fast),
        };
        format!("{r:?} {:?} {:?} {} {}", p.quotes, p.trades, p.ack, p.renew)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Whatever the fast path reads, it reads as serde_json alone does:
        /// the same quotes, prints, flags and errors, frame for frame.
        #[test]
        fn the_fast_path_agrees_with_serde_json_on_mutated_frames(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((0usize..400, 0usize..PIECES.len(), 0u8..3), 0..4),
        ) {
            let (venue, text) = SEEDS[seed];
            let mut frame = text.to_string();
            for (at, piece, op) in edits {
                let mut at = at % (frame.len() + 1);
                while !frame.is_char_boundary(at) {
                    at -= 1;
                }
                match op {
                    0 => frame.insert_str(at, PIECES[piece]),
                    1 => {
                        let mut end = (at + piece % 4 + 1).min(frame.len());
                        while !frame.is_char_boundary(end) {
                            end += 1;
                        }
                        frame.replace_range(at..end, "");
                    }
                    _ => {
                        let mut end = (at + 1).min(frame.len());
                        while !frame.is_char_boundary(end) {
                            end += 1;
                        }
                        frame.replace_range(at..end, PIECES[piece]);
                    }
                }
            }
            proptest::prop_assert_eq!(
                outcome(venue, &frame, true),
                outcome(venue, &frame, false),
                "{}", frame
            );
        }
    }
}
