//! Lenient readers for single members (ZJ-JSON-02), for `#[serde(deserialize_with)]`.
//!
//! The standard's examples write numbers as strings (`recordTime:"1609744974000"`) and
//! strings as numbers (`type:1`, `personId: 4508004291609636864`), and devices copy them.
//! Every reader here accepts both spellings of its type and nothing else:
//!
//! | reader | accepts |
//! |---|---|
//! | [`u32()`], [`u64()`], [`i64()`] | a JSON integer, an integral float (`1.0`), or decimal text (`"64"`, `"1.0"`) in range |
//! | [`f64()`] | a JSON number or numeric text (`"36.7"`); never `NaN`/`inf` |
//! | [`string()`] | a JSON string, or a number whose JSON text becomes the string (`4508004291609636864` → `"4508004291609636864"`, exact for every 64-bit integer; a float as its shortest text) |
//! | [`bool()`] | `true`/`false`, `0`/`1`, `"0"`/`"1"`, `"true"`/`"false"` |
//! | [`strings()`] | an array of what [`string()`] accepts |
//! | `opt_*` | the same, plus `null` (absent); for numbers and booleans also `""` (absent) |
//!
//! Text is taken **exactly**: `" 64"` is not a number. Errors are Chinese messages such as
//! `类型错误: 需要整数，收到 "abc"`; [`super::parse`] prefixes them with the member's path.
//!
//! Every conversion runs *inside* the visitor, so `serde_json` records the position of the
//! offending value itself — which is how [`super::parse`] finds the member's name.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// How many characters of an offending text an error message shows.
const SHOWN_CHARS: usize = 40;

/// What a scalar member held on the wire.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Scalar::Null => f.write_str("空值 null"),
            Scalar::Bool(b) => write!(f, "布尔值 {b}"),
            Scalar::U64(n) => write!(f, "整数 {n}"),
            Scalar::I64(n) => write!(f, "整数 {n}"),
            Scalar::F64(x) => write!(f, "小数 {}", float_text(x)),
            Scalar::Str(s) => write!(f, "字符串 {}", quoted(s)),
        }
    }
}

/// `s` in double quotes, cut to [`SHOWN_CHARS`] characters.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars();
    out.extend(chars.by_ref().take(SHOWN_CHARS));
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

/// The shortest JSON text of a finite float (`36.7`, `1e20`).
fn float_text(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string())
}

/// A visitor that sees any scalar and converts it with `convert` while `serde_json` still
/// knows where the value is. Objects and arrays are refused with `expected` in the message.
struct ScalarVisitor<T, F> {
    expected: &'static str,
    convert: F,
    out: PhantomData<fn() -> T>,
}

impl<T, F: FnOnce(Scalar<'_>) -> Result<T, String>> ScalarVisitor<T, F> {
    fn run<E: de::Error>(self, s: Scalar<'_>) -> Result<T, E> {
        (self.convert)(s).map_err(E::custom)
    }
}

impl<'de, T, F: FnOnce(Scalar<'_>) -> Result<T, String>> Visitor<'de> for ScalarVisitor<T, F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        self.run(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.run(Scalar::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.run(Scalar::U64(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        match (u64::try_from(v), i64::try_from(v)) {
            (Ok(u), _) => self.run(Scalar::U64(u)),
            (_, Ok(i)) => self.run(Scalar::I64(i)),
            _ => Err(E::custom(format_args!("取值错误: 整数 {v} 超出范围"))),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(u) => self.run(Scalar::U64(u)),
            Err(_) => Err(E::custom(format_args!("取值错误: 整数 {v} 超出范围"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.run(Scalar::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        self.run(Scalar::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.run(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.run(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<T, A::Error> {
        Err(de::Error::custom(format_args!(
            "类型错误: 需要{}，收到数组",
            self.expected
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<T, A::Error> {
        Err(de::Error::custom(format_args!(
            "类型错误: 需要{}，收到对象",
            self.expected
        )))
    }
}

fn scalar<'de, D, T>(
    d: D,
    expected: &'static str,
    convert: impl FnOnce(Scalar<'_>) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_any(ScalarVisitor {
        expected,
        convert,
        out: PhantomData,
    })
}

// ---- conversions -------------------------------------------------------------------------

fn null_refused() -> String {
    "不能为 null".to_owned()
}

fn wrong(expected: &str, got: Scalar<'_>) -> String {
    format!("类型错误: 需要{expected}，收到{got}")
}

/// An integral float as an integer, when it is one.
fn integral(x: f64) -> Option<i128> {
    // 2^64 bounds every integer type read here; the range check keeps `as` exact.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (x.is_finite() && x.fract() == 0.0 && x.abs() < LIMIT).then_some(x as i128)
}

fn int_of(s: Scalar<'_>) -> Result<i128, String> {
    match s {
        Scalar::U64(n) => Ok(i128::from(n)),
        Scalar::I64(n) => Ok(i128::from(n)),
        Scalar::F64(x) => integral(x).ok_or_else(|| wrong("整数", s)),
        Scalar::Str(t) => t
            .parse::<i128>()
            .ok()
            .or_else(|| t.parse::<f64>().ok().and_then(integral))
            .ok_or_else(|| wrong("整数", s)),
        Scalar::Null => Err(null_refused()),
        Scalar::Bool(_) => Err(wrong("整数", s)),
    }
}

fn int_in<T: TryFrom<i128>>(s: Scalar<'_>) -> Result<T, String> {
    let n = int_of(s)?;
    T::try_from(n).map_err(|_| {
        format!(
            "取值错误: {n} 超出范围 ({})",
            std::any::type_name::<T>().rsplit("::").next().unwrap_or("")
        )
    })
}

fn opt_int_in<T: TryFrom<i128>>(s: Scalar<'_>) -> Result<Option<T>, String> {
    match s {
        Scalar::Null | Scalar::Str("") => Ok(None),
        _ => int_in(s).map(Some),
    }
}

fn positive_u32(s: Scalar<'_>) -> Result<u32, String> {
    match int_in::<u32>(s)? {
        0 => Err("取值错误: 必须 ≥ 1，收到 0".to_owned()),
        n => Ok(n),
    }
}

fn float_of(s: Scalar<'_>) -> Result<f64, String> {
    let x = match s {
        Scalar::U64(n) => n as f64,
        Scalar::I64(n) => n as f64,
        Scalar::F64(x) => x,
        Scalar::Str(t) => t.parse::<f64>().map_err(|_| wrong("数字", s))?,
        Scalar::Null => return Err(null_refused()),
        Scalar::Bool(_) => return Err(wrong("数字", s)),
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(wrong("有限的数字", s))
    }
}

fn opt_float_of(s: Scalar<'_>) -> Result<Option<f64>, String> {
    match s {
        Scalar::Null | Scalar::Str("") => Ok(None),
        _ => float_of(s).map(Some),
    }
}

fn string_of(s: Scalar<'_>) -> Result<String, String> {
    match s {
        Scalar::Str(t) => Ok(t.to_owned()),
        Scalar::U64(n) => Ok(n.to_string()),
        Scalar::I64(n) => Ok(n.to_string()),
        Scalar::F64(x) => Ok(float_text(x)),
        Scalar::Null => Err(null_refused()),
        Scalar::Bool(_) => Err(wrong("字符串", s)),
    }
}

fn opt_string_of(s: Scalar<'_>) -> Result<Option<String>, String> {
    match s {
        Scalar::Null => Ok(None),
        _ => string_of(s).map(Some),
    }
}

fn bool_of(s: Scalar<'_>) -> Result<bool, String> {
    match s {
        Scalar::Bool(b) => Ok(b),
        Scalar::U64(0) | Scalar::I64(0) | Scalar::Str("0" | "false") => Ok(false),
        Scalar::U64(1) | Scalar::I64(1) | Scalar::Str("1" | "true") => Ok(true),
        Scalar::F64(0.0) => Ok(false),
        Scalar::F64(1.0) => Ok(true),
        Scalar::Null => Err(null_refused()),
        _ => Err(wrong("布尔值 (true/false/0/1)", s)),
    }
}

fn opt_bool_of(s: Scalar<'_>) -> Result<Option<bool>, String> {
    match s {
        Scalar::Null | Scalar::Str("") => Ok(None),
        _ => bool_of(s).map(Some),
    }
}

// ---- the readers -------------------------------------------------------------------------

/// A `u32` (Int) from a number or decimal text.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    scalar(d, "整数", int_in::<u32>)
}

/// An optional `u32`; `null` and `""` are absent.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    scalar(d, "整数", opt_int_in::<u32>)
}

/// A page number: a `u32` of at least 1 (`currentPage`).
pub fn page_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    scalar(d, "整数", positive_u32)
}

/// A `u64` (Long) from a number or decimal text.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    scalar(d, "整数", int_in::<u64>)
}

/// An optional `u64`; `null` and `""` are absent.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    scalar(d, "整数", opt_int_in::<u64>)
}

/// An `i64` (Long, e.g. epoch milliseconds) from a number or decimal text.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    scalar(d, "整数", int_in::<i64>)
}

/// An optional `i64`; `null` and `""` are absent.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    scalar(d, "整数", opt_int_in::<i64>)
}

/// A finite `f64` (Double) from a number or numeric text.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    scalar(d, "数字", float_of)
}

/// An optional finite `f64`; `null` and `""` are absent.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    scalar(d, "数字", opt_float_of)
}

/// A `String` from a string or a number (the number's JSON text, exact for 64-bit integers:
/// ids, ZJ-JSON-03).
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    scalar(d, "字符串", string_of)
}

/// An optional `String`; `null` is absent (`""` stays an empty string).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar(d, "字符串", opt_string_of)
}

/// A `bool` from `true`/`false`, `0`/`1` or their text (`hasImg`).
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    scalar(d, "布尔值", bool_of)
}

/// An optional `bool`; `null` and `""` are absent.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    scalar(d, "布尔值", opt_bool_of)
}

/// An integer read as [`i64()`] reads it (number or decimal text), then `convert`ed — for
/// codes such as a task status. `convert`'s error text is the message (write it in Chinese,
/// e.g. `取值错误: 需要 1、2 或 3，收到 7`); it runs inside the visitor, so the member is named.
pub fn integer_with<'de, D, T>(
    d: D,
    convert: impl FnOnce(i128) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    scalar(d, "整数", |s| convert(int_of(s)?))
}

/// One element of [`strings`].
struct LenientString(String);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d).map(LenientString)
    }
}

struct StringsVisitor {
    null_is_empty: bool,
}

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("字符串数组")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        // The hint comes from the input: cap it so a hostile length cannot reserve much.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(LenientString(s)) = seq.next_element()? {
            out.push(s);
        }
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        if self.null_is_empty {
            Ok(Vec::new())
        } else {
            Err(E::custom(null_refused()))
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Vec<String>, A::Error> {
        Err(de::Error::custom("类型错误: 需要字符串数组，收到对象"))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Vec<String>, E> {
        Err(E::custom(wrong("字符串数组", Scalar::Bool(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<String>, E> {
        Err(E::custom(wrong("字符串数组", Scalar::U64(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<String>, E> {
        Err(E::custom(wrong("字符串数组", Scalar::I64(v))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Vec<String>, E> {
        Err(E::custom(wrong("字符串数组", Scalar::F64(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Err(E::custom(wrong("字符串数组", Scalar::Str(v))))
    }
}

/// A list of id strings (`taskids`, `personIds`, `imgUrls`); each element as [`string`].
/// `null` is refused (a required list).
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(StringsVisitor {
        null_is_empty: false,
    })
}

/// Like [`strings`], but `null` is an empty list; pair with `#[serde(default)]`.
pub fn strings_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(StringsVisitor {
        null_is_empty: true,
    })
}

/// Any `T` whose `null` means its default (e.g. an optional list given as `null`);
/// pair with `#[serde(default)]`.
pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// JSON text held in a member: a string is taken as it is; any other JSON value (an object
/// sent where the standard says "JSON text") is written back as compact JSON; `null` is `""`.
pub fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Null => Ok(String::new()),
        other => Ok(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_from_text_and_floats() {
        assert_eq!(int_in::<u32>(Scalar::Str("64")), Ok(64));
        assert_eq!(int_in::<u32>(Scalar::Str("1.0")), Ok(1));
        assert_eq!(int_in::<u32>(Scalar::F64(16.0)), Ok(16));
        assert!(int_in::<u32>(Scalar::F64(1.5)).is_err());
        assert!(int_in::<u32>(Scalar::Str(" 64")).is_err());
        assert!(int_in::<u32>(Scalar::Str("abc")).is_err());
        assert!(int_in::<u32>(Scalar::I64(-1)).is_err());
        assert!(int_in::<u32>(Scalar::Str("NaN")).is_err());
        assert_eq!(int_in::<u64>(Scalar::U64(u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn strings_from_numbers() {
        assert_eq!(
            string_of(Scalar::U64(4_508_004_291_609_636_864)).as_deref(),
            Ok("4508004291609636864")
        );
        assert_eq!(string_of(Scalar::F64(36.7)).as_deref(), Ok("36.7"));
        assert!(string_of(Scalar::Bool(true)).is_err());
    }

    #[test]
    fn long_text_is_cut_in_messages() {
        let long = "x".repeat(1000);
        let msg = wrong("整数", Scalar::Str(&long));
        assert!(msg.chars().count() < 80, "{msg}");
    }
}
