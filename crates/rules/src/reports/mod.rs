//! Attendance reports: pure functions from attendance data to summaries and spreadsheets.
//!
//! This module owns the business rules of the reports a labour manager reads, not where their
//! data comes from: callers load punches and workers from the store and hand plain structs in.
//! No I/O, no clock, no database.
//!
//! - [`daily`]: the daily summary per person and Beijing day (first in, last out, hours).
//! - [`monthly`]: the monthly attendance sheet (月度考勤表) as `.xlsx` bytes.

pub mod daily;
pub mod monthly;

pub use daily::{DaySummary, Direction, Punch, beijing_date, beijing_day_start_ms, summarize};
pub use monthly::{MonthlySheet, ProjectMonth, WorkerMonth, month_days, write_monthly};

/// Why a report could not be produced. Messages are Chinese: they reach the console.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The month is not 1..=12, or the year is outside what the calendar supports.
    #[error("月份无效：{year}年{month}月")]
    InvalidMonth {
        /// The year asked for.
        year: i16,
        /// The month asked for.
        month: u8,
    },
    /// A worker's row has a day the month does not have (a caller bug, refused rather than
    /// silently dropped).
    #[error("{year}年{month}月没有第 {day} 日")]
    DayOutOfMonth {
        /// The year of the sheet.
        year: i16,
        /// The month of the sheet.
        month: u8,
        /// The offending day key.
        day: u8,
    },
    /// The spreadsheet writer failed.
    #[error("生成 Excel 文件失败：{0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}
