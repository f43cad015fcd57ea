//! The daily attendance summary: one [`DaySummary`] per person and Beijing calendar day.
//!
//! This module owns the rule "first in, last out, hours — direction from the device, else
//! first/last of the day":
//!
//! - **First in** is the earliest punch taken by an `In` device that day; when the person has no
//!   such punch, the earliest punch taken by a `Both` device.
//! - **Last out** is the latest punch taken by an `Out` device; failing that, the latest punch
//!   taken by a `Both` device.
//! - **Hours** are `last out − first in`, rounded half-up to 0.1 h (computed in whole tenths, so
//!   no floating-point drift). When the day has a single punch, or first in / last out is missing,
//!   or first in is not before last out, hours are `None`: the sheet shows the "single punch"
//!   mark instead of a number, because there is no honest duration to show.
//! - **Days** are Beijing calendar days (fixed UTC+8, no daylight-saving time), whatever the
//!   server's time zone: a punch at 23:30 Beijing time belongs to that day, not the next.
//!
//! Punches whose instant lies outside the calendar range `jiff` supports (years −9999..=9999)
//! cannot have a calendar day and are skipped; real devices never produce them.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::Offset;

/// Milliseconds per tenth of an hour: the resolution of [`DaySummary::hours`].
const MS_PER_TENTH_HOUR: i64 = 360_000;

/// Beijing time: a fixed UTC+8 offset all year.
const BEIJING: Offset = Offset::constant(8);

/// Which way a gate counts: an entrance's punches are candidates for "first in", an exit's
/// for "last out", and a two-way device's are used when no directed punch exists. Devices
/// are stored with one (`store::Device::direction`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

impl Direction {
    /// Every value, in declaration order.
    pub const ALL: &[Self] = &[Self::In, Self::Out, Self::Both];

    /// The stored and wire text (`in`, `out`, `both`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.as_str() == s)
    }
}

/// One attendance record, reduced to what the daily rule needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punch {
    /// The worker.
    pub person_id: i64,
    /// When the punch was taken, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The direction of the device that took it.
    pub direction: Direction,
}

/// One person's attendance on one Beijing calendar day.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySummary {
    /// The worker.
    pub person_id: i64,
    /// The Beijing calendar day.
    pub day: Date,
    /// First in (see the module docs), epoch milliseconds.
    pub first_in_ms: Option<i64>,
    /// Last out (see the module docs), epoch milliseconds.
    pub last_out_ms: Option<i64>,
    /// How many punches the person has that day (every punch is counted exactly once).
    pub punches: u32,
    /// Hours between first in and last out, rounded to 0.1 h; `None` is the "single punch" mark.
    pub hours: Option<f64>,
}

/// The Beijing calendar day of an instant; `None` outside the range `jiff` supports.
pub fn beijing_date(at_ms: i64) -> Option<Date> {
    let ts = jiff::Timestamp::from_millisecond(at_ms).ok()?;
    Some(BEIJING.to_datetime(ts).date())
}

/// The first millisecond of a Beijing calendar day; `None` outside the range `jiff` supports.
pub fn beijing_day_start_ms(day: Date) -> Option<i64> {
    let ts = BEIJING
        .to_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .ok()?;
    Some(ts.as_millisecond())
}

/// Running extremes of one person's day.
#[derive(Default)]
struct Acc {
    punches: u32,
    first_in: Option<i64>,
    last_out: Option<i64>,
    first_both: Option<i64>,
    last_both: Option<i64>,
}

impl Acc {
    fn add(&mut self, p: &Punch) {
        self.punches = self.punches.saturating_add(1);
        let min = |cur: Option<i64>| Some(cur.map_or(p.at_ms, |c| c.min(p.at_ms)));
        let max = |cur: Option<i64>| Some(cur.map_or(p.at_ms, |c| c.max(p.at_ms)));
        match p.direction {
            Direction::In => self.first_in = min(self.first_in),
            Direction::Out => self.last_out = max(self.last_out),
            Direction::Both => {
                self.first_both = min(self.first_both);
                self.last_both = max(self.last_both);
            }
        }
    }
}

/// Summarises punches per (person, Beijing day), sorted by (day, person).
///
/// The input need not be sorted; duplicates are counted as the punches they are.
pub fn summarize(punches: &[Punch]) -> Vec<DaySummary> {
    // BTreeMap keyed (day, person) gives the output order for free.
    let mut days: BTreeMap<(Date, i64), Acc> = BTreeMap::new();
    for p in punches {
        let Some(day) = beijing_date(p.at_ms) else {
            continue;
        };
        days.entry((day, p.person_id)).or_default().add(p);
    }
    days.into_iter()
        .map(|((day, person_id), acc)| {
            let first_in_ms = acc.first_in.or(acc.first_both);
            let last_out_ms = acc.last_out.or(acc.last_both);
            let hours = match (first_in_ms, last_out_ms) {
                (Some(a), Some(b)) if acc.punches > 1 && a < b => Some(round_hours(b - a)),
                _ => None,
            };
            DaySummary {
                person_id,
                day,
                first_in_ms,
                last_out_ms,
                punches: acc.punches,
                hours,
            }
        })
        .collect()
}

/// A positive duration in hours, rounded half-up to one decimal.
fn round_hours(duration_ms: i64) -> f64 {
    // Integer tenths first: 0.1 h steps are exact in decimal, and the sheet shows one decimal.
    // Within one day the duration is < 86.4 M ms, far from overflow.
    let tenths = (duration_ms + MS_PER_TENTH_HOUR / 2) / MS_PER_TENTH_HOUR;
    tenths as f64 / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Epoch ms of a Beijing wall-clock time.
    fn bj(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        let dt = jiff::civil::date(y, mo, d).at(h, mi, 0, 0);
        BEIJING
            .to_timestamp(dt)
            .expect("test times are in range")
            .as_millisecond()
    }

    fn punch(person_id: i64, at_ms: i64, direction: Direction) -> Punch {
        Punch {
            person_id,
            at_ms,
            direction,
        }
    }

    #[test]
    fn directed_devices_win_over_both_devices() {
        use Direction::*;
        let s = summarize(&[
            punch(1, bj(2026, 11, 2, 7, 0), Both), // earlier, but an In punch exists
            punch(1, bj(2026, 11, 2, 7, 30), In),
            punch(1, bj(2026, 11, 2, 8, 0), In),
            punch(1, bj(2026, 11, 2, 17, 0), Out),
            punch(1, bj(2026, 11, 2, 19, 0), Both), // later, but an Out punch exists
        ]);
        assert_eq!(s.len(), 1);
        let d = &s[0];
        assert_eq!(d.day, jiff::civil::date(2026, 11, 2));
        assert_eq!(d.first_in_ms, Some(bj(2026, 11, 2, 7, 30)));
        assert_eq!(d.last_out_ms, Some(bj(2026, 11, 2, 17, 0)));
        assert_eq!(d.punches, 5);
        assert_eq!(d.hours, Some(9.5));
    }

    #[test]
    fn both_devices_give_first_and_last_of_the_day() {
        use Direction::Both;
        let s = summarize(&[
            punch(7, bj(2026, 11, 3, 12, 0), Both),
            punch(7, bj(2026, 11, 3, 17, 20), Both),
            punch(7, bj(2026, 11, 3, 7, 50), Both),
        ]);
        assert_eq!(s[0].first_in_ms, Some(bj(2026, 11, 3, 7, 50)));
        assert_eq!(s[0].last_out_ms, Some(bj(2026, 11, 3, 17, 20)));
        assert_eq!(s[0].hours, Some(9.5));
    }

    #[test]
    fn mixed_in_device_and_both_device_for_the_exit() {
        use Direction::*;
        let s = summarize(&[
            punch(1, bj(2026, 11, 3, 8, 0), In),
            punch(1, bj(2026, 11, 3, 16, 0), Both),
        ]);
        assert_eq!(s[0].hours, Some(8.0));
    }

    #[test]
    fn single_punch_has_no_hours() {
        for dir in [Direction::In, Direction::Out, Direction::Both] {
            let s = summarize(&[punch(1, bj(2026, 11, 4, 8, 0), dir)]);
            assert_eq!(s[0].punches, 1);
            assert_eq!(s[0].hours, None, "{dir:?}");
        }
    }

    #[test]
    fn only_entrance_punches_or_out_before_in_have_no_hours() {
        use Direction::*;
        let s = summarize(&[
            punch(1, bj(2026, 11, 4, 8, 0), In),
            punch(1, bj(2026, 11, 4, 9, 0), In),
        ]);
        assert_eq!((s[0].last_out_ms, s[0].hours), (None, None));
        let s = summarize(&[
            punch(1, bj(2026, 11, 4, 8, 0), Out),
            punch(1, bj(2026, 11, 4, 18, 0), In),
        ]);
        assert_eq!(s[0].hours, None);
    }

    #[test]
    fn days_are_beijing_days() {
        use Direction::Both;
        // 2026-11-04 23:30 Beijing is 15:30 UTC the same day; 00:30 Beijing is the previous UTC day.
        let late = bj(2026, 11, 4, 23, 30);
        let early = bj(2026, 11, 5, 0, 30);
        assert_eq!(beijing_date(late), Some(jiff::civil::date(2026, 11, 4)));
        assert_eq!(beijing_date(early), Some(jiff::civil::date(2026, 11, 5)));
        let s = summarize(&[punch(1, late, Both), punch(1, early, Both)]);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|d| d.hours.is_none()));
        // The UTC midnight boundary is not a Beijing boundary: 07:00 and 09:00 Beijing straddle it.
        let s = summarize(&[
            punch(1, bj(2026, 11, 6, 7, 0), Both),
            punch(1, bj(2026, 11, 6, 9, 0), Both),
        ]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].hours, Some(2.0));
    }

    #[test]
    fn hours_round_half_up_to_a_tenth() {
        assert_eq!(round_hours(3 * 60_000), 0.1); // 3 min is exactly half a tenth
        assert_eq!(round_hours(3 * 60_000 - 1), 0.0);
        assert_eq!(round_hours(8 * 3_600_000 + 20 * 60_000), 8.3);
        assert_eq!(round_hours(8 * 3_600_000 + 27 * 60_000), 8.5);
    }

    #[test]
    fn output_is_sorted_by_day_then_person() {
        use Direction::Both;
        let s = summarize(&[
            punch(2, bj(2026, 11, 2, 8, 0), Both),
            punch(1, bj(2026, 11, 2, 8, 0), Both),
            punch(3, bj(2026, 11, 1, 8, 0), Both),
        ]);
        let keys: Vec<_> = s.iter().map(|d| (d.day.day(), d.person_id)).collect();
        assert_eq!(keys, [(1, 3), (2, 1), (2, 2)]);
    }

    #[test]
    fn out_of_range_instants_are_skipped_not_panicking() {
        let s = summarize(&[
            punch(1, i64::MAX, Direction::In),
            punch(1, i64::MIN, Direction::Out),
        ]);
        assert!(s.is_empty());
        assert_eq!(summarize(&[]), []);
    }

    fn arb_punch() -> impl Strategy<Value = Punch> {
        // Two weeks around 2026-11-01 and three people: dense enough for many shared days.
        let base = bj(2026, 11, 1, 0, 0);
        (
            0i64..3,
            0i64..14 * 86_400_000,
            prop_oneof![
                Just(Direction::In),
                Just(Direction::Out),
                Just(Direction::Both)
            ],
        )
            .prop_map(move |(person_id, off, direction)| punch(person_id, base + off, direction))
    }

    proptest! {
        #[test]
        fn summaries_keep_their_invariants(punches in prop::collection::vec(arb_punch(), 0..60)) {
            let s = summarize(&punches);
            // Every punch is counted exactly once.
            let total: u32 = s.iter().map(|d| d.punches).sum();
            prop_assert_eq!(total as usize, punches.len());
            // Sorted by (day, person), keys unique.
            prop_assert!(s.windows(2).all(|w| (w[0].day, w[0].person_id) < (w[1].day, w[1].person_id)));
            for d in &s {
                let mine: Vec<&Punch> = punches
                    .iter()
                    .filter(|p| p.person_id == d.person_id && beijing_date(p.at_ms) == Some(d.day))
                    .collect();
                prop_assert_eq!(mine.len(), d.punches as usize);
                // First and last are punches of that person and day.
                for t in [d.first_in_ms, d.last_out_ms].into_iter().flatten() {
                    prop_assert!(mine.iter().any(|p| p.at_ms == t));
                }
                match d.hours {
                    Some(h) => {
                        let (a, b) = (d.first_in_ms.unwrap(), d.last_out_ms.unwrap());
                        prop_assert!(a < b);
                        prop_assert!((0.0..=24.0).contains(&h));
                        prop_assert!((h - (b - a) as f64 / 3_600_000.0).abs() <= 0.05 + 1e-9);
                        prop_assert!(d.punches >= 2);
                    }
                    None => prop_assert!(
                        d.punches == 1
                            || d.first_in_ms.is_none()
                            || d.last_out_ms.is_none()
                            || d.first_in_ms >= d.last_out_ms
                    ),
                }
            }
        }

        #[test]
        fn summarize_never_panics(raw in prop::collection::vec((any::<i64>(), any::<i64>(), 0u8..3), 0..20)) {
            let punches: Vec<Punch> = raw
                .into_iter()
                .map(|(p, t, d)| punch(p, t, [Direction::In, Direction::Out, Direction::Both][d as usize]))
                .collect();
            let _ = summarize(&punches);
        }
    }
}
