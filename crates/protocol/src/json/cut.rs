//! The image cut: the two accepted "param without img" forms (ZJ-SIGN-06, ZJ-SIGN-07,
//! ZJ-SIGN-08), made from tokens alone.

use std::ops::Range;

use super::JsonError;
use super::doc::{Doc, Member, Node};

/// Which members to cut from a param (mirrors [`crate::apicode::ImgCut`]).
#[derive(Debug, Clone, Copy)]
pub enum Cut<'n> {
    /// Members of the root object with these names.
    TopLevel(&'n [&'n str]),
    /// A member with this name in every object of the root's `data` array.
    DataRows(&'n str),
}

impl Cut<'_> {
    /// Whether both forms of `text` are `text` itself, whenever it tokenizes, as a scan can
    /// tell without tokenizing: only printable ASCII (no whitespace anywhere, so none outside
    /// strings), no backslash (no escaped member name), no comment, and no cut name anywhere.
    /// What a device signing compact JSON without images sends, such as every sign-in of an
    /// offline backlog; tokenizing its param and building both forms was a twentieth of such a
    /// sign-in's instructions (BENCHMARKS.md, session 19).
    pub fn leaves_whole(&self, text: &str) -> bool {
        let names: &[&str] = match self {
            Cut::TopLevel(names) => names,
            Cut::DataRows(name) => std::slice::from_ref(name),
        };
        // A cut name first: a param carrying a photo names it, and `contains` is a vector
        // search, where the byte test went over the photo's 65 KB one byte at a time (a sixth
        // of a sign-in's CPU with a photo, BENCHMARKS.md session 22).
        !names.iter().any(|name| text.contains(name))
            && printable_without_backslash(text.as_bytes())
            && !text.contains("/*")
            && !text.contains("//")
    }
}

/// Whether every byte is printable ASCII other than a backslash. Tested a block at a time
/// without stopping early inside it, so the compiler compares a vector of bytes at once.
fn printable_without_backslash(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|block| {
        block
            .iter()
            .fold(true, |ok, &b| ok & b.is_ascii_graphic() & (b != b'\\'))
    })
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
        let is_cut = |m: &Member<'_>| names.contains(&m.key.as_ref());
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
    // Kept tokens that touch (nothing between them) are copied as one slice: a compact param
    // is a single run, not a copy per token.
    let mut next_cut = cuts.iter().map(|(t, _)| t.clone()).peekable();
    let mut run: Option<Range<usize>> = None;
    let mut i = 0;
    while i < doc.tokens.len() {
        if let Some(r) = next_cut.peek()
            && r.start == i
        {
            i = r.end;
            next_cut.next();
            continue;
        }
        let span = &doc.tokens[i].span;
        match run.as_mut() {
            Some(open) if open.end == span.start => open.end = span.end,
            _ => {
                if let Some(done) = run.replace(span.clone()) {
                    compact.push_str(&text[done]);
                }
            }
        }
        i += 1;
    }
    if let Some(done) = run {
        compact.push_str(&text[done]);
    }
    Ok(CutForms { compact, spaced })
}
