//! The lenient JSON of ZJ-JSON-01, at the level of **tokens and spans**.
//!
//! Devices in the field copy the standard's examples: unquoted keys, single quotes, trailing
//! commas. Signatures cover the param text *exactly as sent*, minus the `img` members for
//! some apicodes (ZJ-SIGN-03, ZJ-SIGN-08), so the platform must never re-serialise to verify.
//! Everything here therefore works on a token stream with byte spans into the original text:
//!
//! - [`tokenize`] splits text into tokens (whitespace and comments are skipped, not tokens);
//! - [`Doc::parse`] checks the structure and records, for each object member, its key and
//!   the token range of its value — enough to find `param` inside an HTTP envelope and to cut
//!   `img` members out of a param;
//! - [`to_strict`] rewrites JSON5-style text into strict JSON (a token rewrite), so `serde_json`
//!   is the only value parser in the project;
//! - [`cut_members`] produces the two accepted "param without img" forms.
//!
//! Accepted beyond strict JSON: unquoted identifier keys, single-quoted strings, `//` and
//! `/* */` comments, trailing commas, a leading `+` on numbers. Refused: hex numbers,
//! `Infinity`/`NaN`, unquoted values other than `true`/`false`/`null`.

use std::borrow::Cow;
use std::ops::Range;

/// Why a text is not (lenient) JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct JsonError {
    pub offset: usize,
    pub reason: &'static str,
}

fn err<T>(offset: usize, reason: &'static str) -> Result<T, JsonError> {
    Err(JsonError { offset, reason })
}

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
    let mut out = Vec::new();
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
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return Ok(i + 1),
            // Raw control characters are not allowed inside strings; a newline usually
            // means a missing quote, and reporting it here names the right place.
            b'\n' | b'\r' => return err(i, "line break inside a string"),
            _ => i += 1,
        }
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
pub fn key_text(text: &str, tok: &Token) -> Option<String> {
    let raw = &text[tok.span.clone()];
    match tok.kind {
        TokenKind::Ident => Some(raw.to_owned()),
        TokenKind::Str => serde_json::from_str(raw).ok(),
        TokenKind::SingleStr => serde_json::from_str(&single_to_double(raw)).ok(),
        _ => None,
    }
}

/// Rewrites a single-quoted string token as a double-quoted one with the same value.
fn single_to_double(raw: &str) -> String {
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

/// A value in the structure of a document: which tokens it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Object {
        tokens: Range<usize>,
        members: Vec<Member>,
    },
    Array {
        tokens: Range<usize>,
        items: Vec<Node>,
    },
    Scalar {
        token: usize,
    },
}

impl Node {
    /// Token indices covered by this value.
    pub fn tokens(&self) -> Range<usize> {
        match self {
            Node::Object { tokens, .. } | Node::Array { tokens, .. } => tokens.clone(),
            Node::Scalar { token } => *token..*token + 1,
        }
    }
}

/// One `key: value` member of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// Index of the key token.
    pub key_token: usize,
    pub value: Node,
}

/// A tokenized and structurally checked (lenient) JSON document.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    pub text: &'a str,
    pub tokens: Vec<Token>,
    pub root: Node,
}

/// Nesting limit: devices send shallow objects; deep nesting is an attack on the stack.
const MAX_DEPTH: usize = 64;

impl<'a> Doc<'a> {
    /// Tokenizes and checks the structure of one JSON value (lenient).
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        let tokens = tokenize(text)?;
        let mut p = Parser {
            text,
            tokens: &tokens,
            pos: 0,
        };
        let root = p.value(0)?;
        if p.pos != tokens.len() {
            return err(tokens[p.pos].span.start, "trailing characters");
        }
        Ok(Doc { text, tokens, root })
    }

    /// Byte span of the text of a value (from its first to its last token).
    pub fn span_of(&self, node: &Node) -> Range<usize> {
        let t = node.tokens();
        self.tokens[t.start].span.start..self.tokens[t.end - 1].span.end
    }

    /// The source text of a value, exactly as written.
    pub fn text_of(&self, node: &Node) -> &'a str {
        &self.text[self.span_of(node)]
    }

    /// The members of the root object, or `None` if the root is not an object.
    pub fn root_members(&self) -> Option<&[Member]> {
        match &self.root {
            Node::Object { members, .. } => Some(members),
            _ => None,
        }
    }

    /// The kind of the token of a scalar value.
    pub fn scalar_kind(&self, node: &Node) -> Option<TokenKind> {
        match node {
            Node::Scalar { token } => Some(self.tokens[*token].kind),
            _ => None,
        }
    }
}

struct Parser<'t> {
    text: &'t str,
    tokens: &'t [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn end_offset(&self) -> usize {
        self.text.len()
    }

    fn value(&mut self, depth: usize) -> Result<Node, JsonError> {
        if depth > MAX_DEPTH {
            return err(self.offset(), "nested too deeply");
        }
        let Some(tok) = self.peek() else {
            return err(self.end_offset(), "unexpected end of text");
        };
        let start = self.pos;
        match tok.kind {
            TokenKind::LBrace => {
                self.pos += 1;
                let mut members = Vec::new();
                loop {
                    let Some(t) = self.peek() else {
                        return err(self.end_offset(), "unterminated object");
                    };
                    if t.kind == TokenKind::RBrace {
                        self.pos += 1;
                        break;
                    }
                    if !matches!(
                        t.kind,
                        TokenKind::Str | TokenKind::SingleStr | TokenKind::Ident
                    ) {
                        return err(t.span.start, "expected a member name");
                    }
                    let key = key_text(self.text, t).ok_or(JsonError {
                        offset: t.span.start,
                        reason: "malformed member name",
                    })?;
                    let key_token = self.pos;
                    self.pos += 1;
                    self.expect(TokenKind::Colon, "expected ':' after a member name")?;
                    let value = self.value(depth + 1)?;
                    members.push(Member {
                        key,
                        key_token,
                        value,
                    });
                    if !self.separator(TokenKind::RBrace)? {
                        self.pos += 1;
                        break;
                    }
                }
                Ok(Node::Object {
                    tokens: start..self.pos,
                    members,
                })
            }
            TokenKind::LBracket => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => return err(self.end_offset(), "unterminated array"),
                        Some(t) if t.kind == TokenKind::RBracket => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => {}
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.separator(TokenKind::RBracket)? {
                        self.pos += 1;
                        break;
                    }
                }
                Ok(Node::Array {
                    tokens: start..self.pos,
                    items,
                })
            }
            TokenKind::Str | TokenKind::SingleStr | TokenKind::Number => {
                self.pos += 1;
                Ok(Node::Scalar { token: start })
            }
            TokenKind::Ident => {
                if !matches!(&self.text[tok.span.clone()], "true" | "false" | "null") {
                    return err(tok.span.start, "unquoted value");
                }
                self.pos += 1;
                Ok(Node::Scalar { token: start })
            }
            _ => err(tok.span.start, "expected a value"),
        }
    }

    /// After a member or item: a comma (returns true: more may follow) or the closing token
    /// (returns false, not consumed).
    fn separator(&mut self, close: TokenKind) -> Result<bool, JsonError> {
        match self.peek() {
            Some(t) if t.kind == TokenKind::Comma => {
                self.pos += 1;
                Ok(true)
            }
            Some(t) if t.kind == close => Ok(false),
            Some(t) => err(t.span.start, "expected ',' or a closing bracket"),
            None => err(self.end_offset(), "unexpected end of text"),
        }
    }

    fn expect(&mut self, kind: TokenKind, reason: &'static str) -> Result<(), JsonError> {
        match self.peek() {
            Some(t) if t.kind == kind => {
                self.pos += 1;
                Ok(())
            }
            _ => err(self.offset(), reason),
        }
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end_offset(), |t| t.span.start)
    }
}

/// Rewrites lenient JSON into strict JSON; borrowed when the text is already strict.
///
/// The fast path asks `serde_json` first, so strict input (what almost every device sends)
/// costs one validation pass and no copy.
pub fn to_strict(text: &str) -> Result<Cow<'_, str>, JsonError> {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return Ok(Cow::Borrowed(text));
    }
    let doc = Doc::parse(text)?;
    Ok(Cow::Owned(doc.write_strict()))
}

impl Doc<'_> {
    /// Writes the document as strict compact JSON: bare keys quoted, single quotes turned
    /// into double quotes, `+` signs and trailing commas (a comma before a closing bracket)
    /// dropped; every other token exactly as written.
    fn write_strict(&self) -> String {
        self.write_strict_tokens(0..self.tokens.len())
    }

    /// One value written as strict compact JSON, members in order, tokens as written: the
    /// extra signature form of an object param in a JSON5 envelope (ZJ-SIGN-04).
    pub fn compact_strict(&self, node: &Node) -> String {
        self.write_strict_tokens(node.tokens())
    }

    fn write_strict_tokens(&self, range: Range<usize>) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        let kept: Vec<usize> = range.collect();
        for (n, &ti) in kept.iter().enumerate() {
            let tok = &self.tokens[ti];
            let raw = &self.text[tok.span.clone()];
            match tok.kind {
                TokenKind::Comma => {
                    let next = kept.get(n + 1).map(|&j| self.tokens[j].kind);
                    if matches!(next, Some(TokenKind::RBrace | TokenKind::RBracket)) {
                        continue;
                    }
                    out.push(',');
                }
                TokenKind::SingleStr => out.push_str(&single_to_double(raw)),
                TokenKind::Number => out.push_str(raw.strip_prefix('+').unwrap_or(raw)),
                TokenKind::Ident => {
                    // A bare identifier followed by ':' is a key; quote it.
                    let is_key = kept
                        .get(n + 1)
                        .is_some_and(|&j| self.tokens[j].kind == TokenKind::Colon);
                    if is_key {
                        out.push('"');
                        out.push_str(raw);
                        out.push('"');
                    } else {
                        out.push_str(raw);
                    }
                }
                _ => out.push_str(raw),
            }
        }
        out
    }
}

/// Which members to cut from a param (mirrors [`crate::apicode::ImgCut`]).
#[derive(Debug, Clone, Copy)]
pub enum Cut<'n> {
    /// Members of the root object with these names.
    TopLevel(&'n [&'n str]),
    /// A member with this name in every object of the root's `data` array.
    DataRows(&'n str),
}

/// The two accepted "param without img" texts (ZJ-SIGN-06, ZJ-SIGN-07).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutForms {
    /// Form A: the members and one adjacent comma removed, whitespace outside strings dropped,
    /// every token exactly as sent. What a device that signs before adding `img` produces.
    pub compact: String,
    /// Form B: the same cut, whitespace kept as sent.
    pub spaced: String,
}

/// Cuts the named members out of `text` and returns both signature forms (ZJ-SIGN-08).
///
/// Needs only the token structure: nothing is re-serialised, so key quoting, number text
/// (`36.70`) and string escapes (`\u5f20`) survive byte for byte. A run of consecutive cut
/// members goes together with one adjacent comma — the following one if a kept member
/// follows, else the preceding one — so what remains is still well-formed.
pub fn cut_members(text: &str, cut: Cut<'_>) -> Result<CutForms, JsonError> {
    let doc = Doc::parse(text)?;
    let one_name;
    let (names, objects): (&[&str], Vec<&[Member]>) = match cut {
        Cut::TopLevel(names) => (names, doc.root_members().into_iter().collect()),
        Cut::DataRows(name) => {
            one_name = [name];
            let rows = match doc
                .root_members()
                .and_then(|ms| ms.iter().find(|m| m.key == "data"))
            {
                Some(Member {
                    value: Node::Array { items, .. },
                    ..
                }) => items
                    .iter()
                    .filter_map(|it| match it {
                        Node::Object { members, .. } => Some(members.as_slice()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (&one_name[..], rows)
        }
    };

    // (token range, byte range) of each removal, in text order.
    let mut cuts: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for members in objects {
        let is_cut = |m: &Member| names.contains(&m.key.as_str());
        let mut idx = 0;
        while idx < members.len() {
            if !is_cut(&members[idx]) {
                idx += 1;
                continue;
            }
            let run_start = idx;
            while idx < members.len() && is_cut(&members[idx]) {
                idx += 1;
            }
            let first_tok = members[run_start].key_token;
            let last_tok = members[idx - 1].value.tokens().end; // exclusive
            let key_byte = doc.tokens[first_tok].span.start;
            let value_end_byte = doc.tokens[last_tok - 1].span.end;
            if idx < members.len() {
                // A kept member follows: take the comma after the run and the whitespace
                // up to that member.
                let next = members[idx].key_token;
                cuts.push((first_tok..next, key_byte..doc.tokens[next].span.start));
            } else if run_start > 0 {
                // The run ends the object: take the comma before it.
                let comma = first_tok - 1;
                cuts.push((
                    comma..last_tok,
                    doc.tokens[comma].span.start..value_end_byte,
                ));
            } else {
                cuts.push((first_tok..last_tok, key_byte..value_end_byte));
            }
        }
    }
    cuts.sort_by_key(|(t, _)| t.start);

    let mut compact = String::with_capacity(text.len());
    let mut spaced = String::with_capacity(text.len());
    let mut byte = 0;
    for (_, bytes) in &cuts {
        spaced.push_str(&text[byte..bytes.start]);
        byte = bytes.end;
    }
    spaced.push_str(&text[byte..]);
    let mut next_cut = cuts.iter().map(|(t, _)| t.clone()).peekable();
    let mut i = 0;
    while i < doc.tokens.len() {
        if let Some(r) = next_cut.peek()
            && r.start == i
        {
            i = r.end;
            next_cut.next();
            continue;
        }
        compact.push_str(&text[doc.tokens[i].span.clone()]);
        i += 1;
    }
    Ok(CutForms { compact, spaced })
}
