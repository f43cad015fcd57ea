//! Beijing-time wire timestamps and the clock-skew check (ZJ-TIME-01, ZJ-TIME-02, ZJ-TIME-03).
//!
//! This module owns the one rule of the wire about time: `timeStamp` is `yyyyMMddHHmmss` in
//! **Beijing time**, a fixed UTC+8 offset with no daylight saving time. Inside the workspace a
//! point in time is a [`Timestamp`] — milliseconds since the Unix epoch, the same representation
//! the storage layer keeps — and this module converts between the two and decides whether a
//! device's stamp is close enough to the platform's clock.
//!
//! Like the rest of the crate it does no I/O: none of its rules reads the clock, callers pass
//! "now" in. The one exception is offered, not used: [`now_ms`] reads the system clock once for
//! callers (the platform, the device SDK, the tools), so that the workspace has a single
//! definition of "now in epoch milliseconds". No function of this crate calls it.
//!
//! The `400_05` detail (ZJ-TIME-03) is written by [`SkewError::detail`] and read back by
//! [`platform_time_in_detail`]: the platform writes it, the device SDK corrects its clock from it.
//!
//! ## Rules
//! - ZJ-TIME-01: `timeStamp` is `yyyyMMddHHmmss`, Beijing time —
//!   [`Timestamp::parse_wire`], [`Timestamp::to_wire`], [`today_beijing`].
//! - ZJ-TIME-02: a malformed stamp is `404_01` — [`TimeError`].
//! - ZJ-TIME-03: a stamp too far from the platform's clock is `400_05`, whose detail carries the
//!   platform's time — [`check_skew`], [`SkewError::detail`], [`platform_time_in_detail`].
//!
//! ## Decisions
//! - **Strict parsing.** [`Timestamp::parse_wire`] accepts exactly 14 ASCII digits forming a real
//!   proleptic-Gregorian date and time (leap years honoured, no leap seconds, year `0000`–`9999`).
//!   No trimming, no separators, no sign, no full-width digits: anything else is
//!   [`TimeError::Malformed`] (`404_01` on the wire).
//! - **Plain arithmetic, not `jiff`.** A fixed offset needs no time-zone database, and the
//!   civil-date ↔ day-number conversion is a dozen lines of well-known integer arithmetic
//!   (H. Hinnant's `days_from_civil` / `civil_from_days`), total over the whole wire range.
//!   `jiff::Timestamp` stops at `9999-12-30T22:00Z` (it reserves room for any offset), which would
//!   have made the last hours of `9999-12-31` Beijing time unrepresentable.
//! - **Formatting saturates.** [`Timestamp::to_wire`] never panics: instants before
//!   [`Timestamp::MIN_WIRE`] format as `00000101000000` and instants after [`Timestamp::MAX_WIRE`]
//!   as `99991231235959`. Sub-second parts are truncated towards the past (an instant at
//!   `…:08.999` prints `…08`, also before 1970).
//! - **The skew check works at wire resolution.** The wire carries whole seconds, so
//!   [`check_skew`] compares both instants truncated to whole seconds — exactly the two values a
//!   [`SkewError`] shows — and accepts a difference equal to `max_skew_secs` (inclusive bound).
//! - **Bounded error payloads.** A malformed input is echoed in the error (useful in the error
//!   detail sent back to the device) but cut to [`MAX_ECHO_CHARS`] characters, so a hostile
//!   multi-megabyte `timeStamp` is not copied into logs and responses.

/// Milliseconds since the Unix epoch, now, from the system clock (0 before 1970, saturating
/// far in the future).
///
/// The one clock read this crate offers its callers, so the platform, the device SDK and the
/// tools share one definition. The crate's own functions never call it: they take time as an
/// input.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The Beijing date (ZJ-TIME-01) of an instant as the number `YYYYMMDD`, e.g. `20240101`
/// (ID-card birth dates are checked against today's). Saturates like [`Timestamp::to_wire`]:
/// `101` before `00000101`, `99991231` after the last wire day.
pub fn today_beijing(now_ms: i64) -> u32 {
    let within = Timestamp(now_ms).clamp(Timestamp::MIN_WIRE, Timestamp::MAX_WIRE);
    let local_secs = within.epoch_secs_floor() + BEIJING_OFFSET_SECS;
    let (year, month, day) = civil_from_days(local_secs.div_euclid(SECS_PER_DAY));
    // Within the wire range: year 0..=9999, so the number fits a u32.
    u32::try_from(year * 10_000 + month * 100 + day).unwrap_or(0)
}

/// Beijing time: UTC+8 all year round, in seconds.
const BEIJING_OFFSET_SECS: i64 = 8 * 3600;

const SECS_PER_DAY: i64 = 86_400;

/// Length of a wire timestamp, `yyyyMMddHHmmss`.
const WIRE_LEN: usize = 14;

/// At most this many characters of a malformed input are kept in [`TimeError::Malformed`].
pub const MAX_ECHO_CHARS: usize = 32;

/// A wire timestamp: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The earliest instant the wire can express: `00000101000000` Beijing time
    /// (`-0001-12-31T16:00:00Z`).
    pub const MIN_WIRE: Timestamp = Timestamp(-62_167_248_000_000);

    /// The last millisecond the wire can express: `99991231235959` Beijing time, plus 999 ms
    /// (`9999-12-31T15:59:59.999Z`).
    pub const MAX_WIRE: Timestamp = Timestamp(253_402_271_999_999);

    /// Wraps milliseconds since the Unix epoch.
    pub fn from_epoch_ms(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn epoch_ms(self) -> i64 {
        self.0
    }

    /// Parses a wire `timeStamp` (`yyyyMMddHHmmss`, Beijing time).
    ///
    /// Strict: exactly 14 ASCII digits, a real calendar date/time (month 1-12, day valid for the
    /// month including leap years, hour 0-23, minute 0-59, second 0-59).
    ///
    /// # Errors
    /// Anything else is [`TimeError::Malformed`], carrying (a prefix of) the input.
    pub fn parse_wire(s: &str) -> Result<Self, TimeError> {
        let malformed = || TimeError::malformed(s);
        let bytes = s.as_bytes();
        if bytes.len() != WIRE_LEN || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(malformed());
        }
        // All 14 bytes are ASCII digits, so every field fits an i64 without overflow.
        let field = |range: std::ops::Range<usize>| -> i64 {
            bytes[range]
                .iter()
                .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'))
        };
        let (year, month, day) = (field(0..4), field(4..6), field(6..8));
        let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
        if !(1..=12).contains(&month)
            || !(1..=days_in_month(year, month)).contains(&day)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(malformed());
        }
        let local_secs =
            days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
        Ok(Timestamp((local_secs - BEIJING_OFFSET_SECS) * 1000))
    }

    /// Formats as `yyyyMMddHHmmss` in Beijing time (sub-second part truncated).
    ///
    /// Instants outside [`Timestamp::MIN_WIRE`]..=[`Timestamp::MAX_WIRE`] saturate to the first
    /// or last wire value.
    pub fn to_wire(self) -> String {
        let within = self.clamp(Self::MIN_WIRE, Self::MAX_WIRE);
        let local_secs = within.epoch_secs_floor() + BEIJING_OFFSET_SECS;
        let (days, secs_of_day) = (
            local_secs.div_euclid(SECS_PER_DAY),
            local_secs.rem_euclid(SECS_PER_DAY),
        );
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        )
    }

    /// Whole seconds since the epoch, rounded towards the past (the wire's resolution).
    fn epoch_secs_floor(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic-Gregorian date (`month` 1-12, `day` valid).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start on 1 March, so the leap day is the last day of the (shifted) year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // 0..=399
    let shifted_month = if month > 2 { month - 3 } else { month + 9 }; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic-Gregorian `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468; // days since 0000-03-01
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097; // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A `timeStamp` that is not a valid `yyyyMMddHHmmss` Beijing time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Wrong length, a non-digit, or no such date/time. Carries at most [`MAX_ECHO_CHARS`]
    /// characters of the input (followed by `…` when cut).
    #[error("malformed timeStamp {0:?}: expected yyyyMMddHHmmss")]
    Malformed(String),
}

impl TimeError {
    fn malformed(input: &str) -> Self {
        let mut chars = input.char_indices();
        match chars.nth(MAX_ECHO_CHARS) {
            Some((cut, _)) => TimeError::Malformed(format!("{}…", &input[..cut])),
            None => TimeError::Malformed(input.to_owned()),
        }
    }
}

/// The skew check: `Ok` if `|stamp - now| <= max_skew_secs` (inclusive), both taken at the wire's
/// one-second resolution.
///
/// # Errors
/// [`SkewError`] carrying both times in wire form, so a device can correct its clock.
pub fn check_skew(stamp: Timestamp, now: Timestamp, max_skew_secs: u64) -> Result<(), SkewError> {
    let diff =
        (i128::from(stamp.epoch_secs_floor()) - i128::from(now.epoch_secs_floor())).unsigned_abs();
    if diff <= u128::from(max_skew_secs) {
        Ok(())
    } else {
        Err(SkewError {
            device: stamp.to_wire(),
            platform: now.to_wire(),
            max_skew_secs,
        })
    }
}

/// A device's `timeStamp` too far from the platform's clock (`400_05` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeStamp {device} differs from platform time {platform} by more than {max_skew_secs} s")]
pub struct SkewError {
    /// The device's stamp, wire form.
    pub device: String,
    /// The platform's time when it checked, wire form.
    pub platform: String,
    /// The allowed skew.
    pub max_skew_secs: u64,
}

impl SkewError {
    /// The detail of the `400_05` error (ZJ-TIME-03): `设备时间 <device>，平台时间 <platform>`,
    /// both in wire form, so that a device with a wrong clock can correct it
    /// ([`platform_time_in_detail`] reads it back).
    pub fn detail(&self) -> String {
        format!("设备时间 {}，平台时间 {}", self.device, self.platform)
    }
}

/// The platform's time carried by a `400_05` detail (ZJ-TIME-03): the **last** run of exactly
/// 14 digits that is a valid wire timestamp, so it reads [`SkewError::detail`] and tolerates a
/// platform that words the detail differently, as long as the platform time comes last.
pub fn platform_time_in_detail(detail: &str) -> Option<Timestamp> {
    let bytes = detail.as_bytes();
    let mut end = bytes.len();
    while end >= WIRE_LEN {
        let start = end - WIRE_LEN;
        let run = &bytes[start..end];
        let bounded = start == 0 || !bytes[start - 1].is_ascii_digit();
        if run.iter().all(u8::is_ascii_digit) && bounded {
            return std::str::from_utf8(run)
                .ok()
                .and_then(|s| Timestamp::parse_wire(s).ok());
        }
        end -= 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skew_detail_round_trips() {
        let device = Timestamp::parse_wire("20240101000000").unwrap();
        let platform = Timestamp::parse_wire("20240101080000").unwrap();
        let err = check_skew(device, platform, 300).unwrap_err();
        let detail = err.detail();
        assert_eq!(detail, "设备时间 20240101000000，平台时间 20240101080000");
        assert_eq!(platform_time_in_detail(&detail), Some(platform));
    }

    #[test]
    fn the_platform_time_is_the_last_stamp() {
        let t = platform_time_in_detail("设备时间 20240101000000，平台时间 20240101080000");
        assert_eq!(t.unwrap().to_wire(), "20240101080000");
        assert_eq!(platform_time_in_detail("no time"), None);
        // A longer run of digits is no stamp.
        assert_eq!(platform_time_in_detail("x 120240101080000"), None);
    }

    #[test]
    fn today_beijing_is_the_wire_date() {
        for ms in [
            0,
            1_704_038_400_000 - 1,
            1_704_038_400_000,
            1_750_000_000_000,
            -1,
            i64::MIN,
            i64::MAX,
        ] {
            let wire = Timestamp(ms).to_wire();
            assert_eq!(today_beijing(ms), wire[..8].parse::<u32>().unwrap(), "{ms}");
        }
        // 2024-01-01T00:00:00+08:00 is 2023-12-31T16:00Z.
        assert_eq!(today_beijing(1_704_038_400_000), 20_240_101);
        assert_eq!(today_beijing(1_704_038_400_000 - 1), 20_231_231);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
