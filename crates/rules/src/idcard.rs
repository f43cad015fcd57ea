//! The citizen ID-card number (公民身份号码, GB 11643-1999) and its masking.
//!
//! [`IdCardNo::parse`] is the only way to make an [`IdCardNo`], so a value of the type is always a
//! valid 18-character number: the check digit lives in its constructor (DESIGN.md, newtypes at
//! boundaries).
//!
//! Key decisions:
//!
//! - ID numbers are sensitive personal information (PIPL): `Debug` and `Display` show only the
//!   masked form `330102********1234`; the full number is reachable only through
//!   [`IdCardNo::as_str`], for storage. No serde impls: callers store `as_str()` explicitly and
//!   parse on the way in, so a number can never be serialized into a log or a list by accident.
//! - Rules are checked in a fixed order and the first failure is reported, naming the rule:
//!   length, characters, province, birth date, check digit. Error messages are Chinese (shown to
//!   labour managers and device vendors) and never contain the number itself.
//! - Input is not trimmed: a number with spaces is malformed (callers trim if they want to).
//!   A lowercase `x` check character is accepted and stored as `X`.
//! - "Not in the future" is relative to a `today_yyyymmdd` argument (Beijing date), so the type
//!   needs no clock and tests are deterministic.

use std::fmt;

/// Weights of the first 17 digits (GB 11643-1999).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";
/// Province-level codes (first two digits) in use, GB/T 2260, with 71 Taiwan, 81 Hong Kong,
/// 82 Macao, 83 (residence permits of Taiwan residents) and 91 (foreign-born Chinese citizens).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91,
];

/// Why a string is not a valid ID-card number (the Display message names the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdCardError {
    /// Not 18 characters long (the actual character count).
    #[error("身份证号应为 18 位，实际 {0} 位")]
    Length(usize),
    /// Not 17 digits followed by a digit or X.
    #[error("身份证号只能由数字组成，最后一位可以是 X")]
    Characters,
    /// The first two digits are not a known province code.
    #[error("身份证号地区码错误")]
    Province,
    /// Positions 7–14 are not a real date between 1900-01-01 and today.
    #[error("身份证号出生日期无效")]
    BirthDate,
    /// The 18th character does not match the weighted sum of the first 17.
    #[error("身份证号校验位错误")]
    CheckDigit,
}

/// Gender encoded in the 17th digit (odd: male, even: female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    /// 男
    Male,
    /// 女
    Female,
}

/// A valid 18-character ID-card number (GB 11643-1999). `Debug` and `Display` show only the
/// masked form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdCardNo(String);

impl IdCardNo {
    /// Parses an 18-character number: 17 digits + check character (weights 7 9 10 5 8 4 2 1 6 3 7
    /// 9 10 5 8 4 2; sum mod 11 → `10X98765432`; lowercase `x` accepted and normalised to `X`), a
    /// real birth date `YYYYMMDD` at positions 7–14 with year ≥ 1900 and not after
    /// `today_yyyymmdd`, and a known province prefix.
    pub fn parse(s: &str, today_yyyymmdd: u32) -> Result<Self, IdCardError> {
        let chars = s.chars().count();
        if chars != 18 {
            return Err(IdCardError::Length(chars));
        }
        // 18 characters: ASCII ones are one byte each, so 18 bytes means all ASCII.
        let b = s.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
            return Err(IdCardError::Characters);
        }
        let last = b[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(IdCardError::Characters);
        }
        let province = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !PROVINCES.contains(&province) {
            return Err(IdCardError::Province);
        }
        let birth = digits(&b[6..14]);
        if !valid_birth_date(birth, today_yyyymmdd) {
            return Err(IdCardError::BirthDate);
        }
        if check_char(&b[..17]) != last {
            return Err(IdCardError::CheckDigit);
        }
        let mut normalised = s[..17].to_owned();
        normalised.push(char::from(last));
        Ok(IdCardNo(normalised))
    }

    /// The full number — for storage only; show [`IdCardNo::masked`] everywhere else.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form: first 6, 8 asterisks, last 4 (`330102********1234`).
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// Birth date as the number `YYYYMMDD`.
    pub fn birth_date(&self) -> u32 {
        digits(&self.0.as_bytes()[6..14])
    }

    /// Gender from the 17th digit: odd is male.
    pub fn gender(&self) -> Gender {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }
}

impl fmt::Debug for IdCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdCardNo").field(&self.masked()).finish()
    }
}

impl fmt::Display for IdCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Masks any string that may be an ID number, for logs and lists. Length-preserving, counted in
/// characters: 18 or more characters keep the first 6 and the last 4 and star the rest
/// (`330102********1234`); shorter strings (a mistyped number, an old 15-digit one) become stars
/// only, as a partial mask of a short string would reveal too much of it.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    if n < 18 {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < 6 || i >= n - 4 { c } else { '*' })
        .collect()
}

/// Appends the GB 11643 check character to 17 ASCII digits (fixtures, simulators);
/// `None` if `first17` is not 17 ASCII digits.
pub fn with_check_char(first17: &str) -> Option<String> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(format!("{first17}{}", char::from(check_char(b))))
}

/// The check character for 17 ASCII digits.
fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// ASCII digits (already checked) to a number.
fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn valid_birth_date(yyyymmdd: u32, today: u32) -> bool {
    let (year, month, day) = (yyyymmdd / 10_000, yyyymmdd / 100 % 100, yyyymmdd % 100);
    if year < 1900 || yyyymmdd > today || !(1..=12).contains(&month) {
        return false;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn with_check_char_completes_a_known_sample_and_refuses_non_digits() {
        assert_eq!(
            with_check_char("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
        assert!(IdCardNo::parse(&with_check_char("33010219900101123").unwrap(), 20261128).is_ok());
        assert_eq!(with_check_char("1101051949123100"), None);
        assert_eq!(with_check_char("1101051949123100a"), None);
    }

    const TODAY: u32 = 20_261_115;

    /// Appends the correct check character to 17 digits.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", char::from(check_char(first17.as_bytes())))
    }

    #[test]
    fn valid_numbers_parse() {
        let id = IdCardNo::parse("11010519491231002X", TODAY).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), 19_491_231);
        assert_eq!(id.gender(), Gender::Female);

        let lower = IdCardNo::parse("11010519491231002x", TODAY).unwrap();
        assert_eq!(lower.as_str(), "11010519491231002X");
        assert_eq!(lower, id);

        let hz = with_check("33010219900101123");
        let id = IdCardNo::parse(&hz, TODAY).unwrap();
        assert_eq!(id.as_str(), hz);
        assert_eq!(id.birth_date(), 19_900_101);
        assert_eq!(id.gender(), Gender::Male);

        // Leap day, and born today.
        IdCardNo::parse(&with_check("33010220000229002"), TODAY).unwrap();
        IdCardNo::parse(&with_check("33010220261115002"), TODAY).unwrap();
        IdCardNo::parse(&with_check("91000019000101001"), TODAY).unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        use IdCardError::*;
        let p = |s: &str| IdCardNo::parse(s, TODAY);
        assert_eq!(p(""), Err(Length(0)));
        assert_eq!(p("11010519491231002"), Err(Length(17)));
        assert_eq!(p("11010519491231002X1"), Err(Length(19)));
        assert_eq!(p("33010219900101123４"), Err(Characters));
        assert_eq!(p("3301021990010112３4"), Err(Characters));
        assert_eq!(p("1101051949123100XX"), Err(Characters));
        assert_eq!(p("11010519491231002Y"), Err(Characters));
        assert_eq!(p(" 1010519491231002X"), Err(Characters));
        assert_eq!(p("-1010519491231002X"), Err(Characters));
        assert_eq!(p(&with_check("10010519491231002")), Err(Province));
        assert_eq!(p(&with_check("99010519491231002")), Err(Province));
        assert_eq!(p(&with_check("72010519491231002")), Err(Province));
        assert_eq!(p(&with_check("33010219900230002")), Err(BirthDate));
        assert_eq!(p(&with_check("33010219000229002")), Err(BirthDate)); // 1900 not leap
        assert_eq!(p(&with_check("33010219901301002")), Err(BirthDate));
        assert_eq!(p(&with_check("33010219900100002")), Err(BirthDate));
        assert_eq!(p(&with_check("33010219900431002")), Err(BirthDate));
        assert_eq!(p(&with_check("33010218991231002")), Err(BirthDate));
        assert_eq!(p(&with_check("33010220261116002")), Err(BirthDate)); // tomorrow
        assert_eq!(p("110105194912310021"), Err(CheckDigit));
        assert_eq!(CheckDigit.to_string(), "身份证号校验位错误");
        assert_eq!(Length(17).to_string(), "身份证号应为 18 位，实际 17 位");
    }

    #[test]
    fn masking() {
        let id = IdCardNo::parse(&with_check("33010219900101123"), TODAY).unwrap();
        let m = id.masked();
        assert_eq!(m.len(), 18);
        assert!(m.starts_with("330102********"));
        assert_eq!(&m[14..], &id.as_str()[14..]);
        assert_eq!(mask("11010519491231002X"), "110105********002X");
        assert_eq!(mask("1101051949123100"), "****************");
        assert_eq!(mask(""), "");
        assert_eq!(
            mask("身份证号码是一二三四五六七八九十甲乙"),
            "身份证号码是********九十甲乙"
        );
        assert_eq!(mask("1234567890123456789"), "123456*********6789");
    }

    #[test]
    fn debug_and_display_never_show_the_middle() {
        let id = IdCardNo::parse("11010519491231002X", TODAY).unwrap();
        for text in [
            format!("{id:?}"),
            id.to_string(),
            format!("{:?}", Some(&id)),
        ] {
            assert!(!text.contains("19491231"), "{text}");
            assert!(text.contains("110105********002X"), "{text}");
        }
    }

    fn valid_first17() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(PROVINCES),
            0u32..10_000,
            1900u32..=2026,
            1u32..=12,
            1u32..=28,
            0u32..1000,
        )
            .prop_map(|(p, area, y, m, d, seq)| {
                format!("{p:02}{area:04}{y:04}{m:02}{d:02}{seq:03}")
            })
            .prop_filter("not in the future", |s| {
                digits(&s.as_bytes()[6..14]) <= TODAY
            })
    }

    proptest! {
        #[test]
        fn computed_check_char_parses_and_any_other_fails(
            first17 in valid_first17(),
            other in proptest::sample::select(CHECK_CHARS.to_vec()),
        ) {
            let good = with_check(&first17);
            let id = IdCardNo::parse(&good, TODAY).unwrap();
            prop_assert_eq!(id.as_str(), good.as_str());
            let right = check_char(first17.as_bytes());
            prop_assume!(other != right);
            let bad = format!("{first17}{}", char::from(other));
            prop_assert_eq!(IdCardNo::parse(&bad, TODAY), Err(IdCardError::CheckDigit));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = IdCardNo::parse(&s, TODAY);
            prop_assert_eq!(mask(&s).chars().count(), s.chars().count());
        }
    }
}
