//! The monthly attendance sheet (月度考勤表) as an `.xlsx` workbook.
//!
//! This module owns the layout of the sheet a labour manager downloads: one worksheet per
//! project, a title row (`XX项目 2026年11月 考勤表`), a legend row, the column headers
//! 序号 · 姓名 · 身份证号 · 班组 · 工种 · 1 … N (the days of the month) · 出勤天数 · 总工时, and one
//! row per worker. It takes plain data ([`MonthlySheet`]) and returns bytes; where the data comes
//! from (the store, [`super::daily::summarize`]) is the caller's business.
//!
//! Key decisions:
//!
//! - **Day cells** hold the day's hours as a number (format `0.0`, so Excel can sum them) or the
//!   mark [`SINGLE_PUNCH_MARK`] `单` when the hours cannot be computed (a single punch, or no
//!   in/out pair). `单` rather than `√`: a tick reads as "all fine", while the manager should
//!   notice an incomplete day. The legend row under the title explains the mark.
//! - **Totals are values, not formulas**: 出勤天数 counts the days with any punch (hours or mark),
//!   总工时 sums the hours (rounded to 0.1 h). Formulas would show 0 in viewers and parsers that do
//!   not recalculate.
//! - **Worksheet names** follow Excel's rules: at most 31 characters (counted in UTF-16 units, as
//!   Excel does), none of `[ ] : * ? / \`, not starting or ending with `'`, unique ignoring case,
//!   not the reserved `History`. Offending characters become `_`, an empty name becomes `项目`,
//!   and repeats get ` (2)`, ` (3)`, … (the base is shortened to fit).
//! - **Frozen panes** below the header row and right of 姓名, so names and days stay visible.
//! - ID numbers arrive already masked (`masked_idcard`): the sheet is a list (PIPL) and this module
//!   never sees a full number.
//! - Every cell is written as a string or a number, never a formula, so a name like `=1+1` cannot
//!   inject one.

use std::collections::{BTreeMap, HashSet};

use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, Worksheet};

use super::ReportError;
use super::daily::DaySummary;

/// The mark for a day whose hours cannot be computed (one punch, or no in/out pair).
pub const SINGLE_PUNCH_MARK: &str = "单";

/// The legend row, explaining numbers and the mark.
pub const LEGEND: &str = "说明：数字为当日工时（小时，首次进场至末次出场，保留一位小数）；\
“单”表示当日只有一次打卡或缺少进场/出场记录，无法计算工时，计入出勤天数。";

/// Excel's limit on worksheet names.
const MAX_SHEET_NAME_UTF16: usize = 31;

/// Columns before the first day: 序号, 姓名, 身份证号, 班组, 工种.
const LEADING_HEADERS: [&str; 5] = ["序号", "姓名", "身份证号", "班组", "工种"];
const LEADING_WIDTHS: [f64; 5] = [6.0, 10.0, 21.0, 12.0, 10.0];
const DAY_WIDTH: f64 = 5.5;
const TOTAL_HEADERS: [&str; 2] = ["出勤天数", "总工时"];
const TOTAL_WIDTH: f64 = 9.0;

/// Row indexes (0-based) of the fixed block.
const TITLE_ROW: u32 = 0;
const LEGEND_ROW: u32 = 1;
const HEADER_ROW: u32 = 2;
const FIRST_DATA_ROW: u32 = 3;

/// What a day cell shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DayCell {
    /// Hours worked, already rounded to 0.1 h.
    Hours(f64),
    /// Punched, but the hours cannot be computed: shown as [`SINGLE_PUNCH_MARK`].
    SinglePunch,
}

impl DayCell {
    /// The cell for one daily summary: its hours, or the single-punch mark.
    pub fn from_summary(summary: &DaySummary) -> Self {
        match summary.hours {
            Some(h) => DayCell::Hours(h),
            None => DayCell::SinglePunch,
        }
    }
}

/// One worker's row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerMonth {
    /// 姓名.
    pub name: String,
    /// 身份证号, already masked (`330102********1234`).
    pub masked_idcard: String,
    /// 班组.
    pub team: Option<String>,
    /// 工种.
    pub trade: Option<String>,
    /// Day of month (1..=31) → cell; days without punches are absent.
    pub days: BTreeMap<u8, DayCell>,
}

/// One project's worksheet.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectMonth {
    /// The project's name, used in the title and (sanitised) as the worksheet name.
    pub name: String,
    /// Workers, in the order they should appear.
    pub rows: Vec<WorkerMonth>,
}

/// The whole workbook: one month, one worksheet per project.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlySheet {
    /// `(year, month)`, month 1..=12.
    pub month: (i16, u8),
    /// Projects, in worksheet order.
    pub projects: Vec<ProjectMonth>,
}

/// The day cells of one person in one month, from daily summaries (any persons, any days: the
/// others are ignored).
pub fn month_days(
    summaries: &[DaySummary],
    person_id: i64,
    (year, month): (i16, u8),
) -> BTreeMap<u8, DayCell> {
    summaries
        .iter()
        .filter(|s| {
            s.person_id == person_id
                && s.day.year() == year
                && i16::from(s.day.month()) == i16::from(month)
        })
        .filter_map(|s| Some((u8::try_from(s.day.day()).ok()?, DayCell::from_summary(s))))
        .collect()
}

/// Days in a month, or the error naming the month.
fn days_in_month((year, month): (i16, u8)) -> Result<u8, ReportError> {
    let invalid = || ReportError::InvalidMonth { year, month };
    let m = i8::try_from(month).map_err(|_| invalid())?;
    let first = jiff::civil::Date::new(year, m, 1).map_err(|_| invalid())?;
    u8::try_from(first.days_in_month()).map_err(|_| invalid())
}

/// Writes the workbook.
///
/// # Errors
/// [`ReportError::InvalidMonth`] for a month outside 1..=12 (or a year outside ±9999),
/// [`ReportError::DayOutOfMonth`] for a day key the month does not have, and
/// [`ReportError::Xlsx`] if the writer fails.
pub fn write_monthly(sheet: &MonthlySheet) -> Result<Vec<u8>, ReportError> {
    let (year, month) = sheet.month;
    let days = days_in_month(sheet.month)?;
    for project in &sheet.projects {
        for row in &project.rows {
            if let Some(&day) = row.days.keys().find(|&&d| d == 0 || d > days) {
                return Err(ReportError::DayOutOfMonth { year, month, day });
            }
        }
    }

    let styles = Styles::new();
    let mut workbook = Workbook::new();
    let mut names = SheetNames::default();
    for project in &sheet.projects {
        let ws = workbook.add_worksheet();
        ws.set_name(names.assign(&project.name))?;
        write_project(ws, project, sheet.month, days, &styles)?;
    }
    if sheet.projects.is_empty() {
        // A workbook needs a worksheet; an empty month still opens in Excel.
        let ws = workbook.add_worksheet();
        ws.set_name("考勤表")?;
        write_project(
            ws,
            &ProjectMonth {
                name: String::new(),
                rows: Vec::new(),
            },
            sheet.month,
            days,
            &styles,
        )?;
    }
    Ok(workbook.save_to_buffer()?)
}

/// The formats of the sheet, made once.
struct Styles {
    title: Format,
    legend: Format,
    header: Format,
    text: Format,
    center: Format,
    hours: Format,
    mark: Format,
}

impl Styles {
    fn new() -> Self {
        let cell = Format::new().set_border(FormatBorder::Thin);
        Styles {
            title: Format::new()
                .set_bold()
                .set_font_size(14)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            legend: Format::new().set_font_size(9).set_align(FormatAlign::Left),
            header: cell
                .clone()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_background_color(0xD9E1F2),
            text: cell.clone(),
            center: cell.clone().set_align(FormatAlign::Center),
            hours: cell
                .clone()
                .set_num_format("0.0")
                .set_align(FormatAlign::Center),
            mark: cell.set_align(FormatAlign::Center).set_font_color(0xC00000),
        }
    }
}

fn write_project(
    ws: &mut Worksheet,
    project: &ProjectMonth,
    (year, month): (i16, u8),
    days: u8,
    s: &Styles,
) -> Result<(), ReportError> {
    let day_col = |d: u8| LEADING_HEADERS.len() as u16 + u16::from(d) - 1;
    let total_col = day_col(days) + 1;
    let last_col = total_col + TOTAL_HEADERS.len() as u16 - 1;

    let title = if project.name.trim().is_empty() {
        format!("{year}年{month}月 考勤表")
    } else {
        format!("{} {year}年{month}月 考勤表", project.name.trim())
    };
    ws.merge_range(TITLE_ROW, 0, TITLE_ROW, last_col, &title, &s.title)?;
    ws.set_row_height(TITLE_ROW, 24)?;
    ws.merge_range(LEGEND_ROW, 0, LEGEND_ROW, last_col, LEGEND, &s.legend)?;

    for (col, (header, width)) in LEADING_HEADERS.iter().zip(LEADING_WIDTHS).enumerate() {
        let col = col as u16;
        ws.write_string_with_format(HEADER_ROW, col, *header, &s.header)?;
        ws.set_column_width(col, width)?;
    }
    for d in 1..=days {
        ws.write_number_with_format(HEADER_ROW, day_col(d), f64::from(d), &s.header)?;
        ws.set_column_width(day_col(d), DAY_WIDTH)?;
    }
    for (i, header) in TOTAL_HEADERS.iter().enumerate() {
        let col = total_col + i as u16;
        ws.write_string_with_format(HEADER_ROW, col, *header, &s.header)?;
        ws.set_column_width(col, TOTAL_WIDTH)?;
    }
    // Freeze the title, legend and header rows, and 序号 + 姓名.
    ws.set_freeze_panes(FIRST_DATA_ROW, 2)?;

    for (i, w) in project.rows.iter().enumerate() {
        let row = FIRST_DATA_ROW + i as u32;
        ws.write_number_with_format(row, 0, (i + 1) as f64, &s.center)?;
        ws.write_string_with_format(row, 1, &w.name, &s.text)?;
        ws.write_string_with_format(row, 2, &w.masked_idcard, &s.text)?;
        ws.write_string_with_format(row, 3, w.team.as_deref().unwrap_or(""), &s.text)?;
        ws.write_string_with_format(row, 4, w.trade.as_deref().unwrap_or(""), &s.text)?;
        let mut tenths: i64 = 0;
        for d in 1..=days {
            match w.days.get(&d) {
                Some(DayCell::Hours(h)) => {
                    ws.write_number_with_format(row, day_col(d), *h, &s.hours)?;
                    tenths += (h * 10.0).round() as i64;
                }
                Some(DayCell::SinglePunch) => {
                    ws.write_string_with_format(row, day_col(d), SINGLE_PUNCH_MARK, &s.mark)?;
                }
                // Bordered blanks keep the grid readable.
                None => {
                    ws.write_blank(row, day_col(d), &s.center)?;
                }
            }
        }
        // Summing whole tenths avoids 0.1 + 0.2 = 0.30000000000000004 in the total.
        ws.write_number_with_format(row, total_col, w.days.len() as f64, &s.center)?;
        ws.write_number_with_format(row, total_col + 1, tenths as f64 / 10.0, &s.hours)?;
    }
    Ok(())
}

/// Assigns valid, unique worksheet names.
#[derive(Default)]
struct SheetNames {
    /// Names taken so far, lowercased (Excel compares names ignoring case).
    taken: HashSet<String>,
}

impl SheetNames {
    fn assign(&mut self, project: &str) -> String {
        let base = sanitize_sheet_name(project);
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                base.clone()
            } else {
                let suffix = format!(" ({n})");
                let room = MAX_SHEET_NAME_UTF16 - suffix.len();
                format!("{}{suffix}", truncate_utf16(&base, room).trim_end())
            };
            let key = candidate.to_lowercase();
            // "History" is reserved by Excel.
            if key != "history" && self.taken.insert(key) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// A name Excel accepts as a worksheet name (uniqueness aside).
fn sanitize_sheet_name(name: &str) -> String {
    let replaced: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let cut = truncate_utf16(&replaced, MAX_SHEET_NAME_UTF16);
    // A leading or trailing apostrophe is not allowed.
    let cut = cut.trim_matches(|c: char| c == '\'' || c.is_whitespace());
    if cut.is_empty() {
        "项目".to_owned()
    } else {
        cut.to_owned()
    }
}

/// The longest prefix of `s` at most `max` UTF-16 units long, cut at a character boundary.
fn truncate_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::daily::{Direction, Punch, summarize};
    use calamine::{Data, Reader, Xlsx};
    use std::io::Cursor;

    fn worker(name: &str, days: &[(u8, DayCell)]) -> WorkerMonth {
        WorkerMonth {
            name: name.to_owned(),
            masked_idcard: "330102********1234".to_owned(),
            team: Some("木工一班".to_owned()),
            trade: Some("木工".to_owned()),
            days: days.iter().copied().collect(),
        }
    }

    fn open(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
        Xlsx::new(Cursor::new(bytes)).expect("a readable workbook")
    }

    fn cell(range: &calamine::Range<Data>, row: u32, col: u32) -> Data {
        range.get_value((row, col)).cloned().unwrap_or(Data::Empty)
    }

    #[test]
    fn reports_monthly_round_trips_through_calamine() {
        let sheet = MonthlySheet {
            month: (2026, 11),
            projects: vec![
                ProjectMonth {
                    name: "滨江一号地块项目".to_owned(),
                    rows: vec![
                        worker(
                            "张三",
                            &[
                                (2, DayCell::Hours(9.5)),
                                (3, DayCell::SinglePunch),
                                (30, DayCell::Hours(8.3)),
                            ],
                        ),
                        WorkerMonth {
                            team: None,
                            trade: None,
                            ..worker("李四", &[])
                        },
                    ],
                },
                ProjectMonth {
                    name: "空项目".to_owned(),
                    rows: vec![],
                },
            ],
        };
        let mut wb = open(write_monthly(&sheet).unwrap());
        assert_eq!(wb.sheet_names(), ["滨江一号地块项目", "空项目"]);

        let r = wb.worksheet_range("滨江一号地块项目").unwrap();
        assert_eq!(
            cell(&r, 0, 0),
            Data::String("滨江一号地块项目 2026年11月 考勤表".into())
        );
        assert!(matches!(cell(&r, 1, 0), Data::String(s) if s.contains("“单”")));
        let headers: Vec<String> = (0..5 + 30 + 2)
            .map(|c| cell(&r, 2, c).to_string())
            .collect();
        assert_eq!(&headers[..5], ["序号", "姓名", "身份证号", "班组", "工种"]);
        assert_eq!(headers[5], "1");
        assert_eq!(headers[34], "30");
        assert_eq!(&headers[35..], ["出勤天数", "总工时"]);
        // November has 30 days: nothing beyond 总工时.
        assert_eq!(cell(&r, 2, 37), Data::Empty);

        assert_eq!(cell(&r, 3, 0), Data::Float(1.0));
        assert_eq!(cell(&r, 3, 1), Data::String("张三".into()));
        assert_eq!(cell(&r, 3, 2), Data::String("330102********1234".into()));
        assert_eq!(cell(&r, 3, 3), Data::String("木工一班".into()));
        assert_eq!(cell(&r, 3, 5 + 1), Data::Float(9.5)); // day 2
        assert_eq!(cell(&r, 3, 5 + 2), Data::String(SINGLE_PUNCH_MARK.into())); // day 3
        assert_eq!(cell(&r, 3, 5 + 29), Data::Float(8.3)); // day 30
        assert_eq!(cell(&r, 3, 35), Data::Float(3.0));
        assert_eq!(cell(&r, 3, 36), Data::Float(17.8));

        assert_eq!(cell(&r, 4, 1), Data::String("李四".into()));
        assert_eq!(cell(&r, 4, 35), Data::Float(0.0));
        assert_eq!(cell(&r, 4, 36), Data::Float(0.0));

        let empty = wb.worksheet_range("空项目").unwrap();
        assert_eq!(cell(&empty, 2, 1), Data::String("姓名".into()));
        assert_eq!(cell(&empty, 2, 36), Data::String("总工时".into()));
        assert_eq!(cell(&empty, 3, 1), Data::Empty);
    }

    #[test]
    fn reports_monthly_days_follow_the_month_length() {
        let sheet = |month| MonthlySheet {
            month,
            projects: vec![ProjectMonth {
                name: "P".into(),
                rows: vec![],
            }],
        };
        for (month, days) in [((2026, 2), 28u32), ((2028, 2), 29), ((2026, 12), 31)] {
            let mut wb = open(write_monthly(&sheet(month)).unwrap());
            let r = wb.worksheet_range("P").unwrap();
            assert_eq!(cell(&r, 2, 4 + days), Data::Float(f64::from(days)));
            assert_eq!(cell(&r, 2, 5 + days), Data::String("出勤天数".into()));
        }
        assert!(matches!(
            write_monthly(&sheet((2026, 13))),
            Err(ReportError::InvalidMonth { month: 13, .. })
        ));
        assert!(matches!(
            write_monthly(&sheet((2026, 0))),
            Err(ReportError::InvalidMonth { .. })
        ));
    }

    #[test]
    fn reports_monthly_rejects_a_day_the_month_lacks() {
        let sheet = MonthlySheet {
            month: (2026, 11),
            projects: vec![ProjectMonth {
                name: "P".into(),
                rows: vec![worker("张三", &[(31, DayCell::SinglePunch)])],
            }],
        };
        let err = write_monthly(&sheet).unwrap_err();
        assert!(matches!(err, ReportError::DayOutOfMonth { day: 31, .. }));
        assert!(err.to_string().contains("31"));
    }

    #[test]
    fn reports_monthly_no_projects_still_gives_a_sheet() {
        let bytes = write_monthly(&MonthlySheet {
            month: (2026, 11),
            projects: vec![],
        })
        .unwrap();
        let mut wb = open(bytes);
        assert_eq!(wb.sheet_names(), ["考勤表"]);
        let r = wb.worksheet_range("考勤表").unwrap();
        assert_eq!(cell(&r, 0, 0), Data::String("2026年11月 考勤表".into()));
    }

    #[test]
    fn reports_sheet_names_are_sanitised_and_unique() {
        let mut names = SheetNames::default();
        assert_eq!(names.assign("A/B:C*D?[E]\\F"), "A_B_C_D__E__F");
        assert_eq!(names.assign("a/b:c*d?[e]\\f"), "a_b_c_d__e__f (2)");
        assert_eq!(names.assign("  "), "项目");
        assert_eq!(names.assign(""), "项目 (2)");
        assert_eq!(names.assign("'引号'"), "引号");
        assert_eq!(names.assign("History"), "History (2)");
        let long = "杭州市滨江区某某街道某某路与某某路交叉口东北角一号地块项目二期工程";
        let first = names.assign(long);
        let second = names.assign(long);
        assert_eq!(first.encode_utf16().count(), 31);
        assert!(second.ends_with(" (2)"));
        assert!(second.encode_utf16().count() <= 31);
        assert_ne!(first, second);
        // Astral characters count two units and are never split.
        let emoji = "😀".repeat(20);
        assert_eq!(sanitize_sheet_name(&emoji).encode_utf16().count(), 30);
    }

    #[test]
    fn reports_monthly_duplicate_and_hostile_project_names_make_a_valid_workbook() {
        let project = |name: &str| ProjectMonth {
            name: name.into(),
            rows: vec![worker("=HYPERLINK(\"x\")", &[(1, DayCell::Hours(1.0))])],
        };
        let sheet = MonthlySheet {
            month: (2026, 11),
            projects: vec![
                project("工地/一期"),
                project("工地/一期"),
                project("x".repeat(40).as_str()),
            ],
        };
        let mut wb = open(write_monthly(&sheet).unwrap());
        let names = wb.sheet_names();
        assert_eq!(names[0], "工地_一期");
        assert_eq!(names[1], "工地_一期 (2)");
        assert_eq!(names[2], "x".repeat(31));
        let r = wb.worksheet_range(&names[1]).unwrap();
        // The title keeps the real project name; the formula-like name stays text.
        assert_eq!(
            cell(&r, 0, 0),
            Data::String("工地/一期 2026年11月 考勤表".into())
        );
        assert_eq!(cell(&r, 3, 1), Data::String("=HYPERLINK(\"x\")".into()));
    }

    #[test]
    fn reports_month_days_from_daily_summaries() {
        let bj = |d: i8, h: i8| {
            jiff::tz::Offset::constant(8)
                .to_timestamp(jiff::civil::date(2026, 11, d).at(h, 0, 0, 0))
                .unwrap()
                .as_millisecond()
        };
        let p = |person_id, at_ms| Punch {
            person_id,
            at_ms,
            direction: Direction::Both,
        };
        let summaries = summarize(&[
            p(1, bj(2, 8)),
            p(1, bj(2, 17)),
            p(1, bj(3, 8)),
            p(2, bj(2, 8)),
            // 2026-10-31 23:00 Beijing: October, not in November's sheet.
            p(1, bj(1, 0) - 3_600_000),
        ]);
        let days = month_days(&summaries, 1, (2026, 11));
        assert_eq!(
            days.into_iter().collect::<Vec<_>>(),
            [(2, DayCell::Hours(9.0)), (3, DayCell::SinglePunch)]
        );
        assert_eq!(month_days(&summaries, 1, (2026, 10)).len(), 1);
        assert!(month_days(&summaries, 3, (2026, 11)).is_empty());
    }
}
