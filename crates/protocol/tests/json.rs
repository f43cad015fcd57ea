//! Lenient JSON (ZJ-JSON-01): tokenizing, JSON5 → strict rewriting, and the image cut
//! (ZJ-SIGN-06 to ZJ-SIGN-08).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use proptest::prelude::*;
use rollcall_protocol::json::{Cut, Doc, cut_members, to_strict};
use serde_json::Value;

fn strict_value(text: &str) -> Value {
    serde_json::from_str(&to_strict(text).unwrap()).unwrap()
}

#[test]
fn the_standards_relaxed_forms_become_strict_json() {
    assert_eq!(
        strict_value(r#"{taskids:["6541951958563696640"]}"#),
        serde_json::json!({"taskids": ["6541951958563696640"]})
    );
    assert_eq!(
        strict_value(
            "{version: \"v1.0.0\", sn: 'a\\'b\"c', n: +5, list: [1, 2,], // note\n /* c */ }"
        ),
        serde_json::json!({"version": "v1.0.0", "sn": "a'b\"c", "n": 5, "list": [1, 2]})
    );
    // Large ids keep every digit.
    assert_eq!(
        strict_value("{personId: 4508004291609636864}")["personId"].as_u64(),
        Some(4508004291609636864)
    );
}

#[test]
fn strict_text_is_borrowed_not_copied() {
    let text = r#"{"a":1}"#;
    assert!(matches!(
        to_strict(text).unwrap(),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn what_is_not_json_is_refused_with_a_position() {
    for bad in [
        "",
        "{",
        "{a}",
        "{a:}",
        "{'a':1",
        "[1 2]",
        "{a:NaN}",
        "{a:0x10}",
        "{a:01}",
        "{a:Infinity}",
        "{\"a\":\"x\ny\"}",
        "{a:1}}",
        "/* open",
        "{a:-}",
        "{a:1.}",
    ] {
        let e = to_strict(bad).expect_err(bad);
        assert!(e.offset <= bad.len(), "{bad:?}: {e}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    assert!(Doc::parse(&deep).is_err());
}

/// ZJ-SIGN-06 (form A) and ZJ-SIGN-07 (form B): every other byte is kept.
#[test]
fn the_cut_keeps_every_other_byte() {
    let img = Cut::TopLevel(&["img"]);
    let f = cut_members(r#"{"img":"x","a":1}"#, img).unwrap();
    assert_eq!(f.compact, r#"{"a":1}"#);
    let f = cut_members(r#"{ "a" : 1 , "img" : "x" }"#, img).unwrap();
    assert_eq!(f.compact, r#"{"a":1}"#);
    assert_eq!(f.spaced, r#"{ "a" : 1  }"#);
    let f = cut_members(r#"{ "img": "x" }"#, img).unwrap();
    assert_eq!((f.compact.as_str(), f.spaced.as_str()), ("{}", "{  }"));
    // No img: form A still drops whitespace; form B is the text itself.
    let f = cut_members("{ \"a\": 1 }", img).unwrap();
    assert_eq!(
        (f.compact.as_str(), f.spaced.as_str()),
        ("{\"a\":1}", "{ \"a\": 1 }")
    );
    // A nested img is not a top-level img.
    let f = cut_members(r#"{"a":{"img":"x"},"img":"y"}"#, img).unwrap();
    assert_eq!(f.compact, r#"{"a":{"img":"x"}}"#);
    // Escaped key text still names img.
    let f = cut_members(r#"{"\u0069mg":"x","a":1}"#, img).unwrap();
    assert_eq!(f.compact, r#"{"a":1}"#);
}

/// ZJ-SIGN-08: a run of cut members goes with one adjacent comma.
#[test]
fn consecutive_image_members_are_cut_together() {
    let names: &[&str] = &["facePhoto", "irisLeft"];
    let f = cut_members(
        r#"{"a":1,"facePhoto":"x","irisLeft":"y"}"#,
        Cut::TopLevel(names),
    )
    .unwrap();
    assert_eq!(f.compact, r#"{"a":1}"#);
    let f = cut_members(
        r#"{"facePhoto":"x","irisLeft":"y","a":1}"#,
        Cut::TopLevel(names),
    )
    .unwrap();
    assert_eq!(f.compact, r#"{"a":1}"#);
    let f = cut_members(
        r#"{"facePhoto":"x","a":1,"irisLeft":"y","b":2}"#,
        Cut::TopLevel(names),
    )
    .unwrap();
    assert_eq!(f.compact, r#"{"a":1,"b":2}"#);
}

/// ZJ-SIGN-08: T_POST_DEVICE_PERSON cuts the `img` of every `data` row.
#[test]
fn data_rows_lose_their_img_and_nothing_else() {
    let text = r#"{"img":"top","data":[{"personId":"1","img":"a"},{"img":"b"},7],"currentPage":1}"#;
    let f = cut_members(text, Cut::DataRows("img")).unwrap();
    assert_eq!(
        f.compact,
        r#"{"img":"top","data":[{"personId":"1"},{},7],"currentPage":1}"#
    );
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-zA-Z0-9 '\"\\\\/\u{4e00}-\u{4e10}]{0,12}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn arb_object() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", arb_scalar()), 0..8).prop_map(|mut v| {
        // Keys must be distinct for a value comparison to mean anything.
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

/// Writes members as JSON5: bare keys, single-quoted strings, spaces, a trailing comma.
fn relaxed(members: &[(String, Value)]) -> String {
    let mut out = String::from("{ ");
    for (k, v) in members {
        let v = match v {
            Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            other => other.to_string(),
        };
        out.push_str(&format!("{k} : {v} ,\n"));
    }
    out.push('}');
    out
}

proptest! {
    #[test]
    fn relaxed_and_strict_parse_to_the_same_value(members in arb_object()) {
        let strict: serde_json::Map<String, Value> = members.iter().cloned().collect();
        let strict_text = Value::Object(strict.clone()).to_string();
        prop_assert_eq!(strict_value(&strict_text), Value::Object(strict.clone()));
        prop_assert_eq!(strict_value(&relaxed(&members)), Value::Object(strict));
    }

    #[test]
    fn cutting_img_equals_never_having_had_it(members in arb_object(), at in any::<usize>(),
                                              img in "[A-Za-z0-9+/=]{0,64}") {
        let members: Vec<_> = members.into_iter().filter(|(k, _)| k != "img").collect();
        let at = at % (members.len() + 1);
        let mut with = members.clone();
        with.insert(at, ("img".to_owned(), Value::from(img)));
        let text = |ms: &[(String, Value)]| {
            let body: Vec<String> = ms.iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.clone()), v))
                .collect();
            format!("{{{}}}", body.join(","))
        };
        let f = cut_members(&text(&with), Cut::TopLevel(&["img"])).unwrap();
        prop_assert_eq!(&f.compact, &text(&members));
        prop_assert_eq!(&f.spaced, &text(&members));
    }

    /// Form A is form B without what lies between its tokens: re-tokenizing the spaced form
    /// and joining its tokens gives the compact one, whatever whitespace, comments and image
    /// members the param had and wherever they were (ZJ-SIGN-06, ZJ-SIGN-07).
    #[test]
    fn the_compact_form_is_the_spaced_form_s_tokens_joined(
        members in arb_object(),
        img_at in proptest::collection::vec(any::<bool>(), 0..8),
        gaps in proptest::collection::vec(
            prop::sample::select(vec!["", " ", "\n\t", " /* c */ ", "// c\n"]), 64),
    ) {
        let mut gap = gaps.iter().cycle();
        let mut text = String::from("{");
        let mut parts: Vec<(String, String)> = members
            .iter()
            .map(|(k, v)| (Value::from(k.clone()).to_string(), v.to_string()))
            .collect();
        for (i, &img) in img_at.iter().enumerate() {
            if img {
                parts.insert(i.min(parts.len()), ("img".to_owned(), "'\u{2603}'".to_owned()));
            }
        }
        for (i, (k, v)) in parts.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            for piece in [gap.next(), Some(&k.as_str()), gap.next(), Some(&":"), gap.next(),
                          Some(&v.as_str()), gap.next()].into_iter().flatten() {
                text.push_str(piece);
            }
        }
        text.push('}');
        let f = cut_members(&text, Cut::TopLevel(&["img"])).unwrap();
        let doc = Doc::parse(&f.spaced).unwrap();
        let joined: String = doc.tokens.iter().map(|t| &f.spaced[t.span.clone()]).collect();
        prop_assert_eq!(&f.compact, &joined);
        // Every image member went (no generated value holds the snowman).
        let snowman = '\u{2603}';
        prop_assert!(!f.compact.contains(snowman) && !f.spaced.contains(snowman));
    }

    #[test]
    fn tokenizing_never_panics(text in ".{0,200}") {
        let _ = to_strict(&text);
        let _ = cut_members(&text, Cut::DataRows("img"));
    }
}

/// Param-like texts: JSON punctuation, quotes, letters that spell `img` now and then, digits,
/// spaces, backslashes, slashes and a non-ASCII letter.
fn param_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just(":"),
            Just(","),
            Just("\""),
            Just("'"),
            Just("img"),
            Just("data"),
            Just("a"),
            Just("1"),
            Just(" "),
            Just("\\"),
            Just("/"),
            Just("*"),
            Just("张"),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    // ZJ-SIGN-06, ZJ-SIGN-07: a text a scan finds nothing to cut in either does not tokenize
    // or has itself as both forms.
    #[test]
    fn a_text_left_whole_is_both_of_its_forms(text in param_like()) {
        for cut in [Cut::TopLevel(&["img"]), Cut::DataRows("img")] {
            if cut.leaves_whole(&text)
                && let Ok(forms) = cut_members(&text, cut)
            {
                prop_assert_eq!(&forms.compact, &text);
                prop_assert_eq!(&forms.spaced, &text);
            }
        }
    }
}

#[test]
fn a_compact_sign_in_param_is_left_whole_and_one_with_img_or_spaces_is_not() {
    let cut = Cut::TopLevel(&["img"]);
    assert!(cut.leaves_whole(r#"{"personId":"7","type":1,"recordTime":1700000000000}"#));
    assert!(!cut.leaves_whole(r#"{"personId":"7","img":"AAAA"}"#));
    assert!(!cut.leaves_whole(r#"{"personId": "7"}"#));
    assert!(!cut.leaves_whole(r#"{"\u0069mg":"AAAA"}"#));
    assert!(!cut.leaves_whole(r#"{"personId":"7"/*c*/}"#));
    assert!(!cut.leaves_whole(r#"{"personName":"张三"}"#));
}

#[test]
fn a_byte_that_stops_a_long_param_being_left_whole_is_found_wherever_it_is() {
    // The bytes are tested in blocks: the first, a middle and the last byte of a block, and
    // of a short tail after the last whole one, each stop the text being left whole.
    let cut = Cut::TopLevel(&["img"]);
    let clean = format!(r#"{{"personId":"7","qrCodeInfo":"{}"}}"#, "a".repeat(300));
    assert!(cut.leaves_whole(&clean));
    for at in [0, 1, 63, 64, 100, 127, 128, 255, 256, 300, clean.len() - 1] {
        for bad in [b' ', b'\\', b'\t', 0x7f, 0x80] {
            let mut bytes = clean.clone().into_bytes();
            bytes[at] = bad;
            let text = String::from_utf8_lossy(&bytes);
            assert!(!cut.leaves_whole(&text), "byte {bad:#x} at {at}");
        }
    }
}
