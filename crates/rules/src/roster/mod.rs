//! Roster import: a labour manager's worker list (花名册) from `.xlsx` or `.csv`, photos from a
//! `.zip`, and the error report handed back.
//!
//! This module owns reading and checking the files, row by row; it stores nothing. The caller
//! turns [`ImportRow`]s into workers and shows [`RowError`]s (or [`error_report_csv`] /
//! [`error_report_xlsx`]) to the user.
//!
//! Key decisions:
//!
//! - **Header row.** The first non-blank row is the header. Columns are found by their header
//!   text, trimmed, in any order: 姓名 and 身份证号 are required (a missing one fails the whole
//!   file, naming it), 手机号, 班组 and 工种 are optional; other columns are ignored. A required or
//!   optional header appearing twice fails the file too: which one to read would be a guess.
//! - **Row numbers are the ones the user sees**: the Excel row number (header on row 1 when it is
//!   the first row), or for CSV the line the record starts on. Blank rows are skipped but still
//!   counted, so the numbers keep matching the sheet.
//! - **Per-row checks** (first failure per field, every field checked): empty or over-long name;
//!   ID number via [`IdCardNo::parse`] (its message; an ID cell Excel stored as a number has lost
//!   its last digits and gets its own message); phone, when given, 11 digits starting with 1; an ID
//!   number already seen in the file (the second occurrence errors, naming the first row).
//! - **Limits.** At most [`MAX_ROWS`] data rows (a whole-file error beyond it: split the file).
//!   CSV must be UTF-8, with or without BOM; anything else (typically GBK from "CSV (逗号分隔)")
//!   is refused with a message telling how to re-save, rather than guessing an encoding.
//! - **Photos** come as a zip of `<身份证号>.jpg|.jpeg|.png` in any folder, matched case-insensitively
//!   on the `X`. Zip bombs are bounded: at most [`MAX_ZIP_ENTRIES`] entries, the declared size is
//!   checked before reading, at most `max_photo_bytes + 1` bytes are ever read from one entry
//!   (declared sizes can lie), and at most [`MAX_ZIP_TOTAL_BYTES`] in all. An oversize photo is a
//!   problem of its row ([`PhotoZip::photo_for`]), not of the file.
//! - **Privacy.** ID numbers never appear in messages: a row is named by its number, a photo file
//!   whose name is a valid ID number by its masked name.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::idcard::IdCardNo;

mod photos;
mod report;
#[cfg(test)]
mod tests;

pub use photos::{PhotoZip, PhotoZipError, read_photo_zip};
pub use report::{error_report_csv, error_report_xlsx};

/// At most this many data rows per file.
pub const MAX_ROWS: usize = 10_000;
/// At most this many entries (files and folders) in a photo zip.
pub const MAX_ZIP_ENTRIES: usize = 20_000;
/// At most this many uncompressed bytes are read from a photo zip in all.
pub const MAX_ZIP_TOTAL_BYTES: u64 = 512 * 1024 * 1024;
/// Columns beyond this are ignored in `.xlsx` files (a roster has a handful).
pub const MAX_COLUMNS: usize = 256;
/// At most this many entries in an `.xlsx` zip (a roster workbook has about a dozen).
const MAX_XLSX_ENTRIES: usize = 1_000;
/// At most this many declared uncompressed bytes in an `.xlsx` (10,000 rows need a few MB).
pub const MAX_XLSX_UNCOMPRESSED_BYTES: u64 = 200 * 1024 * 1024;
/// Longest accepted name, in characters (longer is a typo or a pasted paragraph).
pub const MAX_NAME_CHARS: usize = 50;
/// Longest accepted team or trade, in characters.
pub const MAX_TEXT_CHARS: usize = 50;

/// Header texts; also the `field` of a [`RowError`].
pub const COL_NAME: &str = "姓名";
pub const COL_IDCARD: &str = "身份证号";
pub const COL_PHONE: &str = "手机号";
pub const COL_TEAM: &str = "班组";
pub const COL_TRADE: &str = "工种";
/// The `field` of a row error about the worker's photo.
pub const FIELD_PHOTO: &str = "照片";

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Local file header signature: every `.xlsx` is a zip.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// One valid data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The row number as the user sees it in the sheet (header = 1 when it is the first row).
    pub row: u32,
    /// 姓名, trimmed.
    pub name: String,
    /// 身份证号, checked.
    pub idcard: IdCardNo,
    /// 手机号: 11 digits starting with 1.
    pub phone: Option<String>,
    /// 班组.
    pub team: Option<String>,
    /// 工种.
    pub trade: Option<String>,
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row number as the user sees it.
    pub row: u32,
    /// The column header, e.g. `身份证号`.
    pub field: String,
    /// What is wrong, in Chinese.
    pub message: String,
}

impl RowError {
    fn new(row: u32, field: &str, message: impl Into<String>) -> Self {
        RowError {
            row,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The result of reading a roster: the valid rows and the errors of the others. A row with any
/// error is not in `rows`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// Valid rows, in file order.
    pub rows: Vec<ImportRow>,
    /// Errors, in file order (a row may have several).
    pub errors: Vec<RowError>,
}

/// Why a whole file cannot be imported. Messages are Chinese: they are shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// CSV bytes that are not UTF-8.
    #[error("文件不是 UTF-8 编码（请在 Excel 中另存为“CSV UTF-8”）")]
    NotUtf8,
    /// No non-blank row at all.
    #[error("文件是空的：没有找到表头行")]
    Empty,
    /// A required column is missing from the header row.
    #[error("缺少必填列“{0}”（表头需包含“姓名”和“身份证号”）")]
    MissingColumn(&'static str),
    /// A known column appears twice in the header row.
    #[error("表头中“{0}”列出现了不止一次")]
    DuplicateColumn(&'static str),
    /// More data rows than [`MAX_ROWS`].
    #[error("文件超过 {max} 行数据，请拆分后分批导入")]
    TooManyRows {
        /// The limit.
        max: usize,
    },
    /// The CSV is malformed (e.g. an unterminated quote).
    #[error("CSV 文件格式错误（第 {line} 行附近）")]
    Csv {
        /// Line where the reader stopped.
        line: u64,
    },
    /// The bytes are not a readable `.xlsx` workbook.
    #[error("无法读取 Excel 文件（请确认是 .xlsx 格式且未加密）")]
    Xlsx,
    /// The workbook inflates to more than [`MAX_XLSX_UNCOMPRESSED_BYTES`].
    #[error("Excel 文件解压后过大（最多 {max_mib} MB），请拆分后分批导入")]
    XlsxTooLarge {
        /// The limit in MiB.
        max_mib: u64,
    },
    /// The workbook has no worksheet.
    #[error("Excel 文件中没有工作表")]
    NoWorksheet,
}

/// Reads a roster, telling `.xlsx` from `.csv` by content (an `.xlsx` is a zip).
///
/// `today_yyyymmdd` is today's Beijing date (birth dates after it are invalid).
///
/// # Errors
/// A whole-file [`ImportError`]; row problems are in [`Roster::errors`].
pub fn read_roster(bytes: &[u8], today_yyyymmdd: u32) -> Result<Roster, ImportError> {
    if bytes.starts_with(ZIP_MAGIC) {
        read_roster_xlsx(bytes, today_yyyymmdd)
    } else {
        read_roster_csv(bytes, today_yyyymmdd)
    }
}

/// Reads a UTF-8 CSV roster (BOM optional).
///
/// # Errors
/// [`ImportError::NotUtf8`], [`ImportError::Csv`], and the header and size errors.
pub fn read_roster_csv(bytes: &[u8], today_yyyymmdd: u32) -> Result<Roster, ImportError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // Check the whole file up front: the csv crate would only complain about the first bad
    // record, after rows were already accepted.
    if std::str::from_utf8(bytes).is_err() {
        return Err(ImportError::NotUtf8);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = Vec::new();
    let mut data_rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(ImportError::Csv { line });
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        let cells: Vec<Cell> = record.iter().map(|s| Cell::Text(s.to_owned())).collect();
        if is_blank(&cells) {
            continue;
        }
        // The first kept record is the header; stop reading once the cap is passed.
        if !records.is_empty() {
            data_rows += 1;
            if data_rows > MAX_ROWS {
                return Err(ImportError::TooManyRows { max: MAX_ROWS });
            }
        }
        let row = u32::try_from(line).unwrap_or(u32::MAX);
        records.push((row, cells));
    }
    check_rows(records, today_yyyymmdd)
}

/// Reads the first worksheet of an `.xlsx` roster.
///
/// # Errors
/// [`ImportError::Xlsx`], [`ImportError::NoWorksheet`], and the header and size errors.
pub fn read_roster_xlsx(bytes: &[u8], today_yyyymmdd: u32) -> Result<Roster, ImportError> {
    precheck_xlsx(bytes)?;
    // calamine 0.38 can panic on a damaged sheet (an unchecked multiplication in its cell
    // reference parser overflows: found by `roster_import_corrupted_files_never_panic`, the
    // case is kept in `proptest-regressions/`). An uploaded file is untrusted input, so a
    // panic inside the parser is an unreadable file, not a failed request.
    std::panic::catch_unwind(|| parse_xlsx(bytes, today_yyyymmdd)).unwrap_or(Err(ImportError::Xlsx))
}

/// [`read_roster_xlsx`] past its size checks.
fn parse_xlsx(bytes: &[u8], today_yyyymmdd: u32) -> Result<Roster, ImportError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|_| ImportError::Xlsx)?;
    let name = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or(ImportError::NoWorksheet)?;
    // Stream the cells rather than load a `Range`: a range is allocated over the bounding box of
    // the used cells, so one cell at A1 and one at XFD1048576 would ask for 17 billion cells.
    let mut reader = workbook
        .worksheet_cells_reader(&name)
        .map_err(|_| ImportError::Xlsx)?;
    // Sheet row (0-based) → (column, cell) of its non-blank cells.
    let mut rows: BTreeMap<u32, Vec<(usize, Cell)>> = BTreeMap::new();
    while let Some(cell) = reader.next_cell().map_err(|_| ImportError::Xlsx)? {
        let (row, col) = cell.get_position();
        let col = col as usize;
        if col >= MAX_COLUMNS {
            continue;
        }
        let value = Cell::from_data(&Data::from(cell.get_value().clone()));
        if value.text().is_empty() {
            continue;
        }
        rows.entry(row).or_default().push((col, value));
        // Header + MAX_ROWS data rows at most.
        if rows.len() > MAX_ROWS + 1 {
            return Err(ImportError::TooManyRows { max: MAX_ROWS });
        }
    }
    let records = rows
        .into_iter()
        .map(|(row, cells)| {
            let width = cells.iter().map(|(c, _)| c + 1).max().unwrap_or(0);
            let mut line = vec![Cell::Text(String::new()); width];
            for (c, v) in cells {
                line[c] = v;
            }
            // Excel numbers rows from 1.
            (row.saturating_add(1), line)
        })
        .collect();
    check_rows(records, today_yyyymmdd)
}

/// Refuses workbooks whose zip declares too many entries or too many uncompressed bytes, before
/// the spreadsheet reader inflates them (shared strings are loaded whole).
fn precheck_xlsx(bytes: &[u8]) -> Result<(), ImportError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| ImportError::Xlsx)?;
    if archive.len() > MAX_XLSX_ENTRIES {
        return Err(ImportError::Xlsx);
    }
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let size = archive
            .by_index_raw(i)
            .map_err(|_| ImportError::Xlsx)?
            .size();
        total = total.saturating_add(size);
    }
    if total > MAX_XLSX_UNCOMPRESSED_BYTES {
        return Err(ImportError::XlsxTooLarge {
            max_mib: MAX_XLSX_UNCOMPRESSED_BYTES / (1024 * 1024),
        });
    }
    Ok(())
}

/// A cell as read, before the column's rules apply.
#[derive(Debug, Clone)]
enum Cell {
    /// Text (CSV, or a text cell).
    Text(String),
    /// A number cell, already printed as an integer when it is one (phones typed into Excel).
    Number(String),
}

impl Cell {
    fn from_data(d: &Data) -> Cell {
        match d {
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
            Data::Empty => Cell::Text(String::new()),
            // Whole numbers print without ".0"; |f| < 1e15 keeps every digit exact.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Cell::Number(format!("{f:.0}")),
            Data::Float(f) => Cell::Number(f.to_string()),
            Data::Int(i) => Cell::Number(i.to_string()),
            other => Cell::Text(other.to_string()),
        }
    }

    fn text(&self) -> &str {
        match self {
            Cell::Text(s) | Cell::Number(s) => s.trim(),
        }
    }
}

fn is_blank(cells: &[Cell]) -> bool {
    cells.iter().all(|c| c.text().is_empty())
}

/// Column indexes found in the header row.
struct Columns {
    name: usize,
    idcard: usize,
    phone: Option<usize>,
    team: Option<usize>,
    trade: Option<usize>,
}

impl Columns {
    fn find(header: &[Cell]) -> Result<Self, ImportError> {
        let find = |title: &'static str| -> Result<Option<usize>, ImportError> {
            let mut hits = header
                .iter()
                .enumerate()
                // A BOM can survive inside the first cell when a file was concatenated.
                .filter(|(_, c)| c.text().trim_start_matches('\u{feff}').trim() == title)
                .map(|(i, _)| i);
            let first = hits.next();
            if hits.next().is_some() {
                return Err(ImportError::DuplicateColumn(title));
            }
            Ok(first)
        };
        let required = |title: &'static str| -> Result<usize, ImportError> {
            find(title)?.ok_or(ImportError::MissingColumn(title))
        };
        Ok(Columns {
            name: required(COL_NAME)?,
            idcard: required(COL_IDCARD)?,
            phone: find(COL_PHONE)?,
            team: find(COL_TEAM)?,
            trade: find(COL_TRADE)?,
        })
    }
}

/// Applies the header and the per-row rules to the non-blank rows (header first).
fn check_rows(records: Vec<(u32, Vec<Cell>)>, today_yyyymmdd: u32) -> Result<Roster, ImportError> {
    let mut records = records.into_iter();
    let (_, header) = records.next().ok_or(ImportError::Empty)?;
    let cols = Columns::find(&header)?;
    let mut roster = Roster::default();
    // ID number → the row it first appeared on (valid numbers only).
    let mut seen: HashMap<IdCardNo, u32> = HashMap::new();
    let empty = Cell::Text(String::new());
    for (row, cells) in records {
        let get = |i: usize| cells.get(i).unwrap_or(&empty);
        let opt = |i: Option<usize>| i.map(get).map(Cell::text).filter(|s| !s.is_empty());
        let mut errors = Vec::new();

        let name = get(cols.name).text();
        if name.is_empty() {
            errors.push(RowError::new(row, COL_NAME, "姓名不能为空"));
        } else if name.chars().count() > MAX_NAME_CHARS {
            errors.push(RowError::new(
                row,
                COL_NAME,
                format!("姓名过长（最多 {MAX_NAME_CHARS} 个字）"),
            ));
        }

        let idcard = match get(cols.idcard) {
            // A number cell, or the "3.30102E+17" Excel writes into a CSV for one: the last
            // digits are gone, and the usual length message would not tell the user why.
            c if is_number_mangled(c) => {
                errors.push(RowError::new(row, COL_IDCARD, ID_AS_NUMBER));
                None
            }
            c if c.text().is_empty() => {
                errors.push(RowError::new(row, COL_IDCARD, "身份证号不能为空"));
                None
            }
            c => match IdCardNo::parse(c.text(), today_yyyymmdd) {
                Ok(id) => match seen.entry(id.clone()) {
                    Entry::Occupied(first) => {
                        errors.push(RowError::new(
                            row,
                            COL_IDCARD,
                            format!("身份证号与第 {} 行重复", first.get()),
                        ));
                        None
                    }
                    Entry::Vacant(v) => {
                        v.insert(row);
                        Some(id)
                    }
                },
                Err(e) => {
                    errors.push(RowError::new(row, COL_IDCARD, e.to_string()));
                    None
                }
            },
        };

        let phone = opt(cols.phone);
        if let Some(p) = phone
            && !valid_phone(p)
        {
            errors.push(RowError::new(
                row,
                COL_PHONE,
                "手机号应为 1 开头的 11 位数字",
            ));
        }
        let team = opt(cols.team);
        let trade = opt(cols.trade);
        for (field, value) in [(COL_TEAM, team), (COL_TRADE, trade)] {
            if value.is_some_and(|v| v.chars().count() > MAX_TEXT_CHARS) {
                errors.push(RowError::new(
                    row,
                    field,
                    format!("{field}过长（最多 {MAX_TEXT_CHARS} 个字）"),
                ));
            }
        }

        match idcard {
            Some(idcard) if errors.is_empty() => roster.rows.push(ImportRow {
                row,
                name: name.to_owned(),
                idcard,
                phone: phone.map(str::to_owned),
                team: team.map(str::to_owned),
                trade: trade.map(str::to_owned),
            }),
            _ => roster.errors.extend(errors),
        }
    }
    Ok(roster)
}

/// The message for an ID number that Excel turned into a number.
const ID_AS_NUMBER: &str =
    "身份证号被 Excel 存成了数字，末几位已丢失；请把该列设为“文本”格式后重新填写";

/// Whether an ID cell holds a number rather than the text of one: a number cell, or scientific
/// notation such as `3.30102E+17`.
fn is_number_mangled(cell: &Cell) -> bool {
    match cell {
        Cell::Number(_) => true,
        Cell::Text(s) => {
            let s = s.trim();
            let Some((mantissa, exp)) = s.split_once(['E', 'e']) else {
                return false;
            };
            let exp = exp.strip_prefix('+').unwrap_or(exp);
            !mantissa.is_empty()
                && !exp.is_empty()
                && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && exp.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// A mainland mobile number: 11 ASCII digits starting with 1.
fn valid_phone(p: &str) -> bool {
    p.len() == 11 && p.starts_with('1') && p.bytes().all(|b| b.is_ascii_digit())
}
