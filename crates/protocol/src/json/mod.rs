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

mod cut;
mod doc;
mod tokens;

pub use cut::{Cut, CutForms, cut_members};
pub use doc::{Doc, Member, Node, to_strict};
pub use tokens::{Token, TokenKind, key_text, tokenize};

/// Why a text is not (lenient) JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct JsonError {
    pub offset: usize,
    pub reason: &'static str,
}

pub(crate) fn err<T>(offset: usize, reason: &'static str) -> Result<T, JsonError> {
    Err(JsonError { offset, reason })
}
