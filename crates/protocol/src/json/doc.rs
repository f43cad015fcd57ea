//! The structure of a document: members and the token ranges of their values; the JSON5 →
//! strict rewrite.

use std::borrow::Cow;
use std::ops::Range;

use super::tokens::{Token, TokenKind, key_text, single_to_double, tokenize};
use super::{JsonError, err};

/// A value in the structure of a document: which tokens it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    Object {
        tokens: Range<usize>,
        members: Vec<Member<'a>>,
    },
    Array {
        tokens: Range<usize>,
        items: Vec<Node<'a>>,
    },
    Scalar {
        token: usize,
    },
}

impl Node<'_> {
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
pub struct Member<'a> {
    /// The decoded key: borrowed from the text unless it had escapes to decode.
    pub key: Cow<'a, str>,
    /// Index of the key token.
    pub key_token: usize,
    pub value: Node<'a>,
}

/// A tokenized and structurally checked (lenient) JSON document.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    pub text: &'a str,
    pub tokens: Vec<Token>,
    pub root: Node<'a>,
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
    pub fn span_of(&self, node: &Node<'_>) -> Range<usize> {
        let t = node.tokens();
        self.tokens[t.start].span.start..self.tokens[t.end - 1].span.end
    }

    /// The source text of a value, exactly as written.
    pub fn text_of(&self, node: &Node<'_>) -> &'a str {
        &self.text[self.span_of(node)]
    }

    /// The members of the root object, or `None` if the root is not an object.
    pub fn root_members(&self) -> Option<&[Member<'a>]> {
        match &self.root {
            Node::Object { members, .. } => Some(members),
            _ => None,
        }
    }

    /// The kind of the token of a scalar value.
    pub fn scalar_kind(&self, node: &Node<'_>) -> Option<TokenKind> {
        match node {
            Node::Scalar { token } => Some(self.tokens[*token].kind),
            _ => None,
        }
    }
}

struct Parser<'a, 't> {
    text: &'a str,
    tokens: &'t [Token],
    pos: usize,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn end_offset(&self) -> usize {
        self.text.len()
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
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
    pub fn compact_strict(&self, node: &Node<'_>) -> String {
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
