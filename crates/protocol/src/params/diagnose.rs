//! Turns a `serde_json` error into a `400_02` whose Chinese detail names the member.
//!
//! `serde_json` says *what* went wrong ("missing field `status`", "invalid type: …") and
//! *where* (line and column), but not in which member. The member is recovered from the
//! position: the text up to it is scanned with a small path tracker (object keys, array
//! indices). This works because `serde_json` stamps an error with the position at which the
//! offending value (or, for a missing member, its object) was just read, and the readers of
//! [`super::lenient`] convert inside their visitors so their errors are stamped there too.

use serde_json::error::Category;

use super::invalid;
use super::lenient::quoted;
use crate::code::ProtocolError;

/// Longest detail written, in characters (a detail ends up in a signed response).
const MAX_DETAIL_CHARS: usize = 200;

/// The `400_02` for `err`, raised while reading `text`.
pub(super) fn error(text: &str, err: &serde_json::Error) -> ProtocolError {
    let next = byte_index(text, err.line(), err.column());
    let detail = match err.classify() {
        Category::Data => data_detail(text, next, &message(err)),
        Category::Syntax | Category::Eof | Category::Io => format!(
            "JSON 语法错误: 第 {} 字节 ({})",
            next.saturating_sub(1),
            message(err)
        ),
    };
    invalid(cut(detail))
}

/// serde_json's message without its " at line L column C" suffix.
fn message(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match full.strip_suffix(&suffix) {
        Some(m) => m.to_owned(),
        None => full,
    }
}

/// The byte index just after the character at (1-based line, column-in-bytes).
fn byte_index(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    line_start.saturating_add(column).min(text.len())
}

fn data_detail(text: &str, next: usize, msg: &str) -> String {
    let path = path_at(text, next);
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = backticked(msg, "missing field ") {
        return format!("缺少字段 {}", join(name));
    }
    if let Some(name) = backticked(msg, "duplicate field ") {
        // Stamped after the repeated key, which the path already ends with.
        let repeated = path == name || path.ends_with(&format!(".{name}"));
        return format!(
            "字段 {} 重复",
            if repeated { path.clone() } else { join(name) }
        );
    }
    let what = if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        format!(
            "类型错误: 需要{}，收到{}",
            expectation(expected),
            unexpected(got)
        )
    } else if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        format!(
            "取值错误: 需要{}，收到{}",
            expectation(expected),
            unexpected(got)
        )
    } else if let Some(rest) = msg.strip_prefix("invalid length ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        format!("长度错误: 需要{}，收到长度 {got}", expectation(expected))
    } else {
        // Our own readers already speak Chinese.
        msg.to_owned()
    };
    if path.is_empty() {
        what
    } else {
        format!("字段 {path} {what}")
    }
}

/// `name` from "<prefix>`name`".
fn backticked<'m>(msg: &'m str, prefix: &str) -> Option<&'m str> {
    msg.strip_prefix(prefix)?
        .strip_prefix('`')?
        .split_once('`')
        .map(|(name, _)| name)
}

/// serde's `Unexpected` text in Chinese.
fn unexpected(got: &str) -> String {
    let tick = |s: &str| s.trim_matches('`').to_owned();
    if got == "null" || got == "unit value" {
        "空值 null".to_owned()
    } else if got == "map" {
        "对象".to_owned()
    } else if got == "sequence" {
        "数组".to_owned()
    } else if let Some(s) = got.strip_prefix("string ") {
        // serde writes the string in Debug form: show a cut of it.
        let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
        format!("字符串 {}", quoted(inner.unwrap_or(s)))
    } else if let Some(n) = got.strip_prefix("integer ") {
        format!("整数 {}", tick(n))
    } else if let Some(n) = got.strip_prefix("floating point ") {
        format!("小数 {}", tick(n))
    } else if let Some(b) = got.strip_prefix("boolean ") {
        format!("布尔值 {}", tick(b))
    } else {
        got.to_owned()
    }
}

/// serde's expectation text in Chinese, for the derive's usual ones.
fn expectation(expected: &str) -> String {
    if expected.starts_with("struct ") || expected == "a map" {
        "对象".to_owned()
    } else if expected == "a sequence" {
        "数组".to_owned()
    } else if expected == "a string" {
        "字符串".to_owned()
    } else if expected == "a boolean" {
        "布尔值".to_owned()
    } else {
        expected.to_owned()
    }
}

/// At most [`MAX_DETAIL_CHARS`] characters.
fn cut(mut detail: String) -> String {
    if let Some((at, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
        detail.truncate(at);
        detail.push('…');
    }
    detail
}

/// One open container while scanning.
enum Frame {
    /// An object: the key of the member being read, and whether a key comes next.
    Object { key: Option<String>, key_next: bool },
    /// An array: the index of the element being read.
    Array(usize),
}

/// The path (`task[0].failedPersons[1].errCode`) of the value being read at byte `end` of
/// the strict JSON `text`; empty at the top level.
fn path_at(text: &str, end: usize) -> String {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes.get(i).copied().unwrap_or(b' ') {
            b'"' => {
                let start = i;
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
                if let Some(Frame::Object { key, key_next }) = stack.last_mut()
                    && *key_next
                {
                    let raw = text.get(start..=i).unwrap_or("");
                    *key = Some(
                        serde_json::from_str::<String>(raw)
                            .unwrap_or_else(|_| raw.trim_matches('"').to_owned()),
                    );
                    *key_next = false;
                }
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                key_next: true,
            }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key_next, .. }) => *key_next = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    // An array refused as a whole is stamped just after its `[`: the array is the member,
    // not its first element. (An object so refused leaves a key-less frame, which adds
    // nothing to the path.)
    let last = bytes
        .get(..end)
        .and_then(|b| b.iter().rev().find(|b| !b.is_ascii_whitespace()));
    if last == Some(&b'[') {
        stack.pop();
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = r#"{"a":{"b":[1,{"c":"x"#;
        assert_eq!(path_at(t, t.len()), "a.b[1].c");
        let t = r#"{"a":{"b":1},"#;
        assert_eq!(path_at(t, t.len()), "a");
        let t = r#"{"a":["#;
        assert_eq!(path_at(t, t.len()), "a");
        let t = r#"{"k\"ey":1"#;
        assert_eq!(path_at(t, t.len()), "k\"ey");
        assert_eq!(path_at("", 10), "");
    }

    #[test]
    fn byte_indices() {
        assert_eq!(byte_index("abc", 1, 2), 2);
        assert_eq!(byte_index("ab\ncd", 2, 1), 4);
        assert_eq!(byte_index("ab", 9, 9), 2);
    }
}
