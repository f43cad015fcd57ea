//! The token level: byte spans of keys, strings, numbers and punctuation in the original text.

use std::borrow::Cow;
use std::ops::Range;

use super::{JsonError, err};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    Comma,
    /// A double-quoted string (strict JSON).
    Str,
    /// A single-quoted string (JSON5).
    SingleStr,
    /// A number, strict or with a leading `+`.
    Number,
    /// A bare identifier: `true`, `false`, `null`, or an unquoted key.
    Ident,
}

/// One token and its byte span in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Range<usize>,
}

/// Splits `text` into tokens. Whitespace and comments separate tokens and are not kept.
pub fn tokenize(text: &str) -> Result<Vec<Token>, JsonError> {
    let b = text.as_bytes();
    // Sized for a short param's tokens at once (growing from empty reallocated three or four
    // times for each); bounded, so a long text (a photo's base64) reserves no more than this.
    let mut out = Vec::with_capacity((b.len() / 4).clamp(4, 64));
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let kind = match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' => {
                i = skip_comment(b, i)?;
                continue;
            }
            b'{' => TokenKind::LBrace,
            b'}' => TokenKind::RBrace,
            b'[' => TokenKind::LBracket,
            b']' => TokenKind::RBracket,
            b':' => TokenKind::Colon,
            b',' => TokenKind::Comma,
            q @ (b'"' | b'\'') => {
                i = string_end(b, i, q)?;
                out.push(Token {
                    kind: if q == b'"' {
                        TokenKind::Str
                    } else {
                        TokenKind::SingleStr
                    },
                    span: start..i,
                });
                continue;
            }
            b'-' | b'+' | b'0'..=b'9' => {
                i = number_end(b, i)?;
                out.push(Token {
                    kind: TokenKind::Number,
                    span: start..i,
                });
                continue;
            }
            c if c == b'_' || c == b'$' || c.is_ascii_alphabetic() || c >= 0x80 => {
                i = ident_end(text, i);
                if i == start {
                    // A non-ASCII character that cannot start a name (symbols, NBSP, BOM).
                    return err(start, "unexpected character");
                }
                out.push(Token {
                    kind: TokenKind::Ident,
                    span: start..i,
                });
                continue;
            }
            _ => return err(i, "unexpected character"),
        };
        i += 1;
        out.push(Token {
            kind,
            span: start..i,
        });
    }
    Ok(out)
}

fn skip_comment(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i + 1) {
        Some(b'/') => Ok(b[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |p| i + p + 1)),
        Some(b'*') => b[i + 2..]
            .windows(2)
            .position(|w| w == b"*/")
            .map(|p| i + 2 + p + 2)
            .ok_or(JsonError {
                offset: i,
                reason: "unterminated comment",
            }),
        _ => err(i, "unexpected character"),
    }
}

/// End (exclusive) of the string starting with quote `q` at `i`.
fn string_end(b: &[u8], mut i: usize, q: u8) -> Result<usize, JsonError> {
    let start = i;
    i += 1;
    // Jumps to the next byte that matters (SIMD): a sign-in's param is mostly one 65 KB
    // base64 string, and a byte loop over it was the largest cost of a sign-in (BENCHMARKS.md).
    while let Some(at) = b
        .get(i..)
        .and_then(|rest| memchr::memchr3(q, b'\\', b'\n', rest))
    {
        let at = i + at;
        // Raw control characters are not allowed inside strings; a newline usually means a
        // missing quote, and reporting it here names the right place.
        if let Some(cr) = memchr::memchr(b'\r', &b[i..at]) {
            return err(i + cr, "line break inside a string");
        }
        match b[at] {
            b'\\' => i = at + 2,
            b'\n' => return err(at, "line break inside a string"),
            _ => return Ok(at + 1),
        }
    }
    if let Some(cr) = b.get(i..).and_then(|rest| memchr::memchr(b'\r', rest)) {
        return err(i + cr, "line break inside a string");
    }
    err(start, "unterminated string")
}

fn number_end(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let start = i;
    if matches!(b[i], b'-' | b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start {
        return err(start, "a sign without digits");
    }
    if b[int_start] == b'0' && i - int_start > 1 {
        return err(start, "leading zero in a number");
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac {
            return err(start, "no digits after the decimal point");
        }
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'-' | b'+') {
            i += 1;
        }
        let exp = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp {
            return err(start, "no digits in the exponent");
        }
    }
    if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        return err(start, "malformed number");
    }
    Ok(i)
}

fn ident_end(text: &str, i: usize) -> usize {
    text[i..]
        .char_indices()
        .find(|&(_, c)| !(c == '_' || c == '$' || c.is_alphanumeric()))
        .map_or(text.len(), |(p, _)| i + p)
}

/// The decoded text of a key token (quoted or bare); `None` if an escape is malformed.
pub fn key_text<'a>(text: &'a str, tok: &Token) -> Option<Cow<'a, str>> {
    let raw = &text[tok.span.clone()];
    match tok.kind {
        TokenKind::Ident => Some(Cow::Borrowed(raw)),
        // A key without escapes or control characters is its text between the quotes, what
        // serde_json decodes it to: borrowed, without a parser run or a copy per key (every
        // member of a signed param is keyed so; BENCHMARKS.md, session 12).
        TokenKind::Str => match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) if !inner.bytes().any(|b| b == b'\\' || b < 0x20) => {
                Some(Cow::Borrowed(inner))
            }
            _ => serde_json::from_str(raw).ok().map(Cow::Owned),
        },
        TokenKind::SingleStr => serde_json::from_str(&single_to_double(raw))
            .ok()
            .map(Cow::Owned),
        _ => None,
    }
}

/// Rewrites a single-quoted string token as a double-quoted one with the same value.
pub(super) fn single_to_double(raw: &str) -> String {
    let inner = &raw[1..raw.len() - 1];
    let mut out = String::with_capacity(raw.len() + 2);
    out.push('"');
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                // \' needs no escape inside double quotes.
                Some('\'') => out.push('\''),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte loop `string_end` replaced: the scan with `memchr` must end every string where
    /// it did and refuse the same texts at the same offsets.
    fn string_end_bytewise(b: &[u8], mut i: usize, q: u8) -> Result<usize, JsonError> {
        let start = i;
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                c if c == q => return Ok(i + 1),
                b'\n' | b'\r' => return err(i, "line break inside a string"),
                _ => i += 1,
            }
        }
        err(start, "unterminated string")
    }

    #[test]
    fn string_ends_at_the_closing_quote_past_escapes() {
        let text = br#""a\"b\\" tail"#;
        assert_eq!(string_end(text, 0, b'"'), Ok(8));
        assert_eq!(string_end(b"'it\\'s' x", 0, b'\''), Ok(7));
        assert_eq!(string_end(b"\"ends in \\", 0, b'"').unwrap_err().offset, 0);
        assert_eq!(string_end(b"\"a\rb\"", 0, b'"').unwrap_err().offset, 2);
        assert_eq!(string_end(b"\"ab\nc\"", 0, b'"').unwrap_err().offset, 3);
        // An escaped line break is skipped like any escaped character.
        assert_eq!(string_end(b"\"a\\\nb\"", 0, b'"'), Ok(6));
    }

    proptest! {
        /// The shortcut for keys without escapes decodes every key as serde_json does, and
        /// refuses the same ones.
        #[test]
        fn a_quoted_key_decodes_as_serde_json_decodes_it(
            inner in "[a-z\\\\\"'\t\u{1}\u{7f}\u{4e2d}u0-9]{0,16}",
        ) {
            let text = format!("\"{inner}\"");
            if let Ok(tokens) = tokenize(&text)
                && let [tok] = tokens.as_slice()
                && tok.kind == TokenKind::Str
            {
                let serde: Option<String> = serde_json::from_str(&text[tok.span.clone()]).ok();
                prop_assert_eq!(key_text(&text, tok).map(Cow::into_owned), serde);
            }
        }

        #[test]
        fn string_end_agrees_with_the_byte_loop(
            body in proptest::collection::vec(
                prop::sample::select(vec![b'a', b'"', b'\'', b'\\', b'\n', b'\r', 0xE4, 0xB8, 0xAD]),
                0..40,
            ),
            single in any::<bool>(),
        ) {
            let q = if single { b'\'' } else { b'"' };
            let mut text = vec![q];
            text.extend(body);
            prop_assert_eq!(string_end(&text, 0, q), string_end_bytewise(&text, 0, q));
        }
    }
}
