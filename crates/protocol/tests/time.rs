//! Beijing-time wire timestamps and the skew check (ZJ-TIME-01, ZJ-TIME-02, ZJ-TIME-03).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use proptest::prelude::*;
use rollcall_protocol::time::{SkewError, TimeError, Timestamp, check_skew};

fn parse(s: &str) -> Timestamp {
    match Timestamp::parse_wire(s) {
        Ok(t) => t,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn assert_malformed(s: &str) {
    match Timestamp::parse_wire(s) {
        Err(TimeError::Malformed(_)) => {}
        Ok(t) => panic!("{s:?} should be rejected, got {t:?}"),
    }
}

#[test]
fn known_values() {
    // 2021-03-28 03:16:08 +08:00 == 2021-03-27T19:16:08Z
    assert_eq!(parse("20210328031608"), Timestamp(1_616_872_568_000));
    assert_eq!(parse("20210328031608").epoch_ms(), 1_616_872_568_000);
    // The Unix epoch is 08:00 in Beijing.
    assert_eq!(parse("19700101080000"), Timestamp(0));
    assert_eq!(parse("19700101000000"), Timestamp(-8 * 3600 * 1000));
    assert_eq!(parse("20000229235959"), Timestamp(951_839_999_000));
    assert_eq!(Timestamp(0).to_wire(), "19700101080000");
    assert_eq!(Timestamp(1_616_872_568_000).to_wire(), "20210328031608");
    assert_eq!(Timestamp::from_epoch_ms(42), Timestamp(42));
}

#[test]
fn day_boundary_in_beijing_not_utc() {
    // 16:00Z is already the next day in Beijing.
    assert_eq!(
        Timestamp(1_704_124_800_000).to_wire(), // 2024-01-01T16:00:00Z
        "20240102000000"
    );
    assert_eq!(
        Timestamp(1_704_124_799_999).to_wire(), // 2024-01-01T15:59:59.999Z
        "20240101235959"
    );
}

#[test]
fn sub_second_part_is_truncated_towards_the_past() {
    assert_eq!(Timestamp(1_616_872_568_999).to_wire(), "20210328031608");
    // Before the epoch too: -1 ms is 1970-01-01T07:59:59.999 in Beijing.
    assert_eq!(Timestamp(-1).to_wire(), "19700101075959");
}

#[test]
fn wire_range_edges() {
    assert_eq!(parse("00000101000000"), Timestamp::MIN_WIRE);
    assert_eq!(
        parse("99991231235959"),
        Timestamp(Timestamp::MAX_WIRE.0 - 999)
    );
    assert_eq!(Timestamp::MIN_WIRE.to_wire(), "00000101000000");
    assert_eq!(Timestamp::MAX_WIRE.to_wire(), "99991231235959");
    // Outside the wire's range, formatting saturates instead of panicking.
    assert_eq!(Timestamp(i64::MIN).to_wire(), "00000101000000");
    assert_eq!(
        Timestamp(Timestamp::MIN_WIRE.0 - 1).to_wire(),
        "00000101000000"
    );
    assert_eq!(Timestamp(i64::MAX).to_wire(), "99991231235959");
    assert_eq!(
        Timestamp(Timestamp::MAX_WIRE.0 + 1).to_wire(),
        "99991231235959"
    );
}

#[test]
fn leap_days() {
    assert_eq!(parse("20240229120000").to_wire(), "20240229120000");
    assert_malformed("20230229120000");
    assert_eq!(parse("20000229000000").to_wire(), "20000229000000"); // divisible by 400
    assert_malformed("19000229000000"); // divisible by 100, not by 400
    assert_malformed("20240230000000");
}

#[test]
fn rejects_impossible_fields() {
    assert_malformed("20211328031608"); // 13th month
    assert_malformed("20210028031608"); // month 0
    assert_malformed("20210300031608"); // day 0
    assert_malformed("20210332031608"); // 32 March
    assert_malformed("20210431031608"); // 31 April
    assert_malformed("20210328241608"); // hour 24
    assert_malformed("20210328036008"); // minute 60
    assert_malformed("20210328031660"); // second 60 (no leap seconds)
    assert_malformed("99999999999999");
}

#[test]
fn rejects_wrong_shapes() {
    assert_malformed("");
    assert_malformed("2021032803160"); // 13 digits
    assert_malformed("202103280316080"); // 15 digits
    assert_malformed("2021-03-28 03:16:08");
    assert_malformed("2021032803160a");
    assert_malformed(" 20210328031608");
    assert_malformed("20210328031608 ");
    assert_malformed("+2021032803160");
    assert_malformed("-2021032803160");
    // Multi-byte UTF-8: full-width digits, CJK, and a string of 14 bytes that is not 14 digits.
    assert_malformed("２０２１０３２８０３１６０８");
    assert_malformed("二〇二一年三月二十八日");
    assert_malformed("2021032803160é"); // 15 bytes
    assert_malformed("202103280316é"); // 14 bytes, 13 chars
    assert_malformed("\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}");
}

#[test]
fn malformed_error_echoes_a_bounded_prefix() {
    assert_eq!(
        Timestamp::parse_wire("2021"),
        Err(TimeError::Malformed("2021".to_owned()))
    );
    let message = Timestamp::parse_wire("x")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "malformed timeStamp \"x\": expected yyyyMMddHHmmss"
    );
    let huge = "时".repeat(1_000_000);
    let Err(TimeError::Malformed(echo)) = Timestamp::parse_wire(&huge) else {
        panic!("must be rejected");
    };
    assert_eq!(
        echo.chars().count(),
        rollcall_protocol::time::MAX_ECHO_CHARS + 1
    );
    assert!(echo.ends_with('…'));
}

#[test]
fn skew_boundary_is_inclusive_in_both_directions() {
    let now = parse("20210328031608");
    let max = 300;
    let secs = |s: i64| Timestamp(now.0 + s * 1000);
    assert_eq!(check_skew(now, now, max), Ok(()));
    assert_eq!(check_skew(secs(300), now, max), Ok(()));
    assert_eq!(check_skew(secs(-300), now, max), Ok(()));
    assert!(check_skew(secs(301), now, max).is_err());
    assert!(check_skew(secs(-301), now, max).is_err());
    // Zero tolerance still accepts the same second.
    assert_eq!(check_skew(now, now, 0), Ok(()));
    assert!(check_skew(secs(1), now, 0).is_err());
}

#[test]
fn skew_is_judged_at_wire_resolution() {
    // The platform's clock has milliseconds, the wire does not: a device stamp of 03:21:08 is
    // exactly 300 s from a platform time of 03:16:08.999 as both are written on the wire.
    let stamp = parse("20210328032108");
    let now = Timestamp(parse("20210328031608").0 + 999);
    assert_eq!(check_skew(stamp, now, 300), Ok(()));
    let stamp = parse("20210328031108");
    assert_eq!(check_skew(stamp, now, 300), Ok(()));
}

#[test]
fn skew_error_carries_the_platform_time() {
    let now = Timestamp(parse("20210328031608").0 + 123);
    let stamp = parse("20210328030000");
    let err = check_skew(stamp, now, 300).unwrap_err();
    assert_eq!(
        err,
        SkewError {
            device: "20210328030000".to_owned(),
            platform: "20210328031608".to_owned(),
            max_skew_secs: 300,
        }
    );
    assert_eq!(
        err.to_string(),
        "timeStamp 20210328030000 differs from platform time 20210328031608 by more than 300 s"
    );
}

#[test]
fn skew_check_does_not_overflow() {
    let far_past = Timestamp(i64::MIN);
    let far_future = Timestamp(i64::MAX);
    assert!(check_skew(far_past, far_future, u64::MAX).is_ok());
    assert!(check_skew(far_future, far_past, 300).is_err());
    assert!(check_skew(far_past, far_future, 300).is_err());
}

/// 1970-01-01T00:00:00+08:00 .. 9999-12-31T23:59:59.999+08:00
const SANE_MS: std::ops::RangeInclusive<i64> = -28_800_000..=253_402_271_999_999;

proptest! {
    #[test]
    fn wire_round_trip(ms in SANE_MS) {
        let t = Timestamp(ms);
        let wire = t.to_wire();
        prop_assert_eq!(wire.len(), 14);
        prop_assert!(wire.bytes().all(|b| b.is_ascii_digit()));
        let back = Timestamp::parse_wire(&wire);
        prop_assert_eq!(back, Ok(Timestamp(ms.div_euclid(1000) * 1000)));
    }

    #[test]
    fn parse_wire_round_trips_every_valid_field_combination(
        year in 0u32..=9999, month in 1u32..=12, day in 1u32..=28,
        hour in 0u32..=23, minute in 0u32..=59, second in 0u32..=59,
    ) {
        let wire = format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}");
        let t = Timestamp::parse_wire(&wire);
        prop_assert!(t.is_ok(), "{} rejected", wire);
        prop_assert_eq!(t.map(Timestamp::to_wire), Ok(wire));
    }

    /// An independent oracle: jiff's own civil arithmetic (inside jiff's range, which ends at
    /// 9999-12-30T22:00Z).
    #[test]
    fn to_wire_agrees_with_jiff(ms in -62_135_596_800_000i64..=253_402_207_200_000) {
        let instant = jiff::Timestamp::from_millisecond(ms).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let civil = jiff::tz::Offset::constant(8).to_datetime(instant);
        let expected = civil.strftime("%Y%m%d%H%M%S").to_string();
        prop_assert_eq!(Timestamp(ms).to_wire(), expected);
    }

    #[test]
    fn parse_wire_never_panics(s in any::<String>()) {
        let _ = Timestamp::parse_wire(&s);
    }

    #[test]
    fn parse_wire_never_panics_on_digit_strings(s in "[0-9]{12,16}") {
        if let Ok(t) = Timestamp::parse_wire(&s) {
            prop_assert_eq!(t.to_wire(), s);
        }
    }

    #[test]
    fn to_wire_never_panics(ms in any::<i64>()) {
        prop_assert_eq!(Timestamp(ms).to_wire().len(), 14);
    }

    #[test]
    fn skew_check_is_symmetric(a in SANE_MS, b in SANE_MS, max in 0u64..1_000_000) {
        prop_assert_eq!(
            check_skew(Timestamp(a), Timestamp(b), max).is_ok(),
            check_skew(Timestamp(b), Timestamp(a), max).is_ok()
        );
    }
}
