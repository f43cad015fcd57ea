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
use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{Format, Workbook};

use crate::rules::idcard::{self, IdCardNo};
use crate::rules::reports::ReportError;

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

/// Why a photo zip cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoZipError {
    /// Not a zip archive.
    #[error("照片压缩包无法读取（请上传 .zip 文件）")]
    NotZip,
    /// More entries than [`MAX_ZIP_ENTRIES`].
    #[error("照片压缩包内文件过多（最多 {max} 个）")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
    /// More uncompressed bytes than [`MAX_ZIP_TOTAL_BYTES`].
    #[error("照片压缩包解压后过大（最多 {max_mib} MB），请分批上传")]
    TooLarge {
        /// The limit in MiB.
        max_mib: u64,
    },
}

/// A file in a photo zip that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoProblem {
    /// The path inside the zip; the stem masked when it is a valid ID number.
    pub file: String,
    /// What is wrong, in Chinese.
    pub message: String,
}

/// Photos found in a zip, by ID number.
#[derive(Default)]
pub struct PhotoZip {
    /// ID number → photo bytes (at most `max_photo_bytes` each).
    pub photos: HashMap<IdCardNo, Vec<u8>>,
    /// ID number → size of a photo that exceeded `max_photo_bytes` (the declared size, or
    /// `max_photo_bytes + 1` when only reading found out).
    pub oversize: HashMap<IdCardNo, u64>,
    /// Files that are not usable photos.
    pub problems: Vec<PhotoProblem>,
    /// The limit the zip was read with.
    pub max_photo_bytes: u64,
}

impl std::fmt::Debug for PhotoZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the bytes: a debug print of a few hundred photos would flood a log.
        f.debug_struct("PhotoZip")
            .field("photos", &self.photos.len())
            .field("oversize", &self.oversize.len())
            .field("problems", &self.problems)
            .finish()
    }
}

impl PhotoZip {
    /// The photo for a roster row: `Ok(None)` when the zip has none for it, `Err` when it had one
    /// that was too large.
    pub fn photo_for(&self, row: &ImportRow) -> Result<Option<&[u8]>, RowError> {
        if let Some(size) = self.oversize.get(&row.idcard) {
            return Err(RowError::new(
                row.row,
                FIELD_PHOTO,
                format!(
                    "照片过大（{} KB，最大 {} KB）",
                    size.div_ceil(1024),
                    self.max_photo_bytes / 1024
                ),
            ));
        }
        Ok(self.photos.get(&row.idcard).map(Vec::as_slice))
    }

    /// Photos (usable or oversize) whose ID number is not on any of the rows, by masked number.
    pub fn unmatched(&self, rows: &[ImportRow]) -> Vec<PhotoProblem> {
        let mut out: Vec<PhotoProblem> = self
            .photos
            .keys()
            .chain(self.oversize.keys())
            .filter(|id| !rows.iter().any(|r| &r.idcard == *id))
            .map(|id| PhotoProblem {
                file: id.masked(),
                message: "花名册中没有这个身份证号".to_owned(),
            })
            .collect();
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }
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

/// Reads a zip of worker photos named by ID number.
///
/// Entries `<身份证号>.jpg|.jpeg|.png` (extension in any case, any folder) become photos; folders,
/// `__MACOSX/` and hidden files (`.DS_Store`, `._x.jpg`) are ignored; everything else is a
/// [`PhotoProblem`]. A photo larger than `max_photo_bytes` is recorded in [`PhotoZip::oversize`].
/// File stems are checked for form and check digit only (any birth date up to 9999-12-31): the
/// roster row, checked against today, is the authority on the number.
///
/// # Errors
/// [`PhotoZipError`] when the archive is unreadable or over the entry or size limits.
pub fn read_photo_zip(bytes: &[u8], max_photo_bytes: u64) -> Result<PhotoZip, PhotoZipError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| PhotoZipError::NotZip)?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(PhotoZipError::TooManyEntries {
            max: MAX_ZIP_ENTRIES,
        });
    }
    let mut out = PhotoZip {
        max_photo_bytes,
        ..PhotoZip::default()
    };
    // Which file each ID's photo came from, to name duplicates.
    let mut from: HashMap<IdCardNo, String> = HashMap::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(_) => {
                out.problems.push(PhotoProblem {
                    file: format!("第 {} 个文件", i + 1),
                    message: "无法读取（文件损坏或已加密）".to_owned(),
                });
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let Ok(path) = entry.name().map(|n| n.into_owned()) else {
            out.problems.push(PhotoProblem {
                file: format!("第 {} 个文件", i + 1),
                message: "文件名无法识别".to_owned(),
            });
            continue;
        };
        let parts: Vec<&str> = path.split(['/', '\\']).collect();
        if parts.contains(&"__MACOSX") {
            continue;
        }
        let file_name = parts.last().copied().unwrap_or("");
        if file_name.is_empty() || file_name.starts_with('.') || file_name == "Thumbs.db" {
            continue;
        }
        let (stem, ext) = file_name.rsplit_once('.').unwrap_or((file_name, ""));
        if !["jpg", "jpeg", "png"].contains(&ext.to_ascii_lowercase().as_str()) {
            out.problems.push(PhotoProblem {
                file: display_path(&path, stem),
                message: "不是照片文件（只接受 .jpg、.jpeg、.png）".to_owned(),
            });
            continue;
        }
        let id = match IdCardNo::parse(stem.trim(), 99_991_231) {
            Ok(id) => id,
            Err(e) => {
                out.problems.push(PhotoProblem {
                    file: display_path(&path, stem),
                    message: format!("文件名不是有效的身份证号：{e}"),
                });
                continue;
            }
        };
        if let Some(first) = from.get(&id) {
            out.problems.push(PhotoProblem {
                file: display_path(&path, stem),
                message: format!("与 {first} 是同一人的照片，已忽略"),
            });
            continue;
        }
        from.insert(id.clone(), display_path(&path, stem));

        // The declared size is free to check; it can lie, so the read is capped as well.
        let declared = entry.size();
        if declared > max_photo_bytes {
            out.oversize.insert(id, declared);
            continue;
        }
        let mut data = Vec::new();
        let read = (&mut entry)
            .take(max_photo_bytes.saturating_add(1))
            .read_to_end(&mut data);
        if read.is_err() {
            out.problems.push(PhotoProblem {
                file: display_path(&path, stem),
                message: "无法读取（文件损坏或已加密）".to_owned(),
            });
            continue;
        }
        total = total.saturating_add(data.len() as u64);
        if total > MAX_ZIP_TOTAL_BYTES {
            return Err(PhotoZipError::TooLarge {
                max_mib: MAX_ZIP_TOTAL_BYTES / (1024 * 1024),
            });
        }
        if data.len() as u64 > max_photo_bytes {
            out.oversize.insert(id, data.len() as u64);
        } else {
            out.photos.insert(id, data);
        }
    }
    Ok(out)
}

/// The path to show for a zip entry: its stem masked when it could be an ID number.
fn display_path(path: &str, stem: &str) -> String {
    let looks_like_id = stem.chars().count() >= 15
        && stem
            .chars()
            .all(|c| c.is_ascii_digit() || c.eq_ignore_ascii_case(&'x'));
    if looks_like_id {
        path.replace(stem, &idcard::mask(stem))
    } else {
        path.to_owned()
    }
}

/// The header of the error report.
const REPORT_HEADERS: [&str; 3] = ["行号", "字段", "错误"];

/// The errors as CSV (行号, 字段, 错误), UTF-8 with a BOM so that Excel shows the Chinese.
pub fn error_report_csv(errors: &[RowError]) -> Vec<u8> {
    let mut out = UTF8_BOM.to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        // Writing to a Vec cannot fail, and every record has the header's three fields.
        let _ = w.write_record(REPORT_HEADERS);
        for e in errors {
            let _ = w.write_record([e.row.to_string().as_str(), &e.field, &e.message]);
        }
        let _ = w.flush();
    }
    out
}

/// The errors as an `.xlsx` workbook (one sheet 导入错误: 行号, 字段, 错误).
///
/// # Errors
/// [`ReportError::Xlsx`] if the writer fails.
pub fn error_report_xlsx(errors: &[RowError]) -> Result<Vec<u8>, ReportError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = workbook.add_worksheet();
    ws.set_name("导入错误")?;
    for (col, h) in REPORT_HEADERS.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *h, &bold)?;
    }
    ws.set_column_width(0, 8)?;
    ws.set_column_width(1, 12)?;
    ws.set_column_width(2, 60)?;
    ws.set_freeze_panes(1, 0)?;
    for (i, e) in errors.iter().enumerate() {
        // Beyond Excel's 1,048,576 rows the writer errors; a capped roster never gets there.
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        ws.write_number(row, 0, f64::from(e.row))?;
        ws.write_string(row, 1, &e.field)?;
        ws.write_string(row, 2, &e.message)?;
    }
    Ok(workbook.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const TODAY: u32 = 20_261_128;

    /// A valid ID number from 17 digits.
    fn id(first17: &str) -> String {
        idcard::with_check_char(first17).expect("17 digits")
    }

    fn a() -> String {
        id("33010219900101123")
    }
    fn b() -> String {
        id("11010519491231002") // ends in X
    }

    fn fields(errors: &[RowError]) -> Vec<(u32, &str)> {
        errors.iter().map(|e| (e.row, e.field.as_str())).collect()
    }

    /// A workbook whose first sheet holds `rows` from A1 (numbers where a cell is a number).
    fn xlsx(rows: &[Vec<XCell>]) -> Vec<u8> {
        xlsx_at(rows, 0, 0)
    }

    #[derive(Clone)]
    enum XCell {
        S(String),
        N(f64),
    }
    use XCell::{N, S};
    fn s(v: &str) -> XCell {
        S(v.to_owned())
    }

    fn xlsx_at(rows: &[Vec<XCell>], row0: u32, col0: u16) -> Vec<u8> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("花名册").unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (row0 + r as u32, col0 + c as u16);
                match cell {
                    S(v) if v.is_empty() => {}
                    S(v) => {
                        ws.write_string(r, c, v).unwrap();
                    }
                    N(v) => {
                        ws.write_number(r, c, *v).unwrap();
                    }
                }
            }
        }
        // A second sheet must be ignored.
        wb.add_worksheet().write_string(0, 0, "其他").unwrap();
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn roster_import_xlsx_rows_and_errors() {
        let rows = vec![
            // Any order, padded headers, an unknown column.
            vec![
                s(" 身份证号 "),
                s("备注"),
                s("姓名"),
                s("工种"),
                s("手机号"),
                s("班组"),
            ],
            vec![
                S(a()),
                s("x"),
                s("张三"),
                s("木工"),
                N(13_800_138_000.0),
                s("一班"),
            ], // 2 ok
            vec![
                S(b().to_lowercase()),
                s(""),
                s(" 李四 "),
                s(""),
                s(""),
                s(""),
            ], // 3 ok, x
            vec![
                S(id("33010219800101001")),
                s(""),
                s(""),
                s(""),
                s(""),
                s(""),
            ], // 4 no name
            vec![
                s("330102199001011230"),
                s(""),
                s("王五"),
                s(""),
                s(""),
                s(""),
            ], // 5 check digit
            vec![s(""), s(""), s(""), s(""), s(""), s("")], // 6 blank
            vec![
                S(id("33010219800101002")),
                s(""),
                s("赵六"),
                s(""),
                s("2345"),
                s(""),
            ], // 7 phone
            vec![S(a()), s(""), s("张三2"), s(""), s(""), s("")], // 8 duplicate of 2
            vec![
                N(330_102_199_001_011_230.0),
                s(""),
                s("钱七"),
                s(""),
                s(""),
                s(""),
            ], // 9 numeric
            vec![s(""), s(""), s("孙八"), s(""), s(""), s("")], // 10 no id
            vec![s("3.30102E+17"), s(""), s("周九"), s(""), s(""), s("")], // 11 as saved in a CSV
        ];
        let roster = read_roster_xlsx(&xlsx(&rows), TODAY).unwrap();
        assert_eq!(roster.rows.len(), 2);
        let r0 = &roster.rows[0];
        assert_eq!(r0.row, 2);
        assert_eq!(r0.name, "张三");
        assert_eq!(r0.idcard.as_str(), a());
        assert_eq!(r0.phone.as_deref(), Some("13800138000"));
        assert_eq!(r0.team.as_deref(), Some("一班"));
        assert_eq!(r0.trade.as_deref(), Some("木工"));
        let r1 = &roster.rows[1];
        assert_eq!((r1.row, r1.name.as_str()), (3, "李四"));
        assert_eq!(r1.idcard.as_str(), b());
        assert_eq!((&r1.phone, &r1.team, &r1.trade), (&None, &None, &None));

        assert_eq!(
            fields(&roster.errors),
            [
                (4, "姓名"),
                (5, "身份证号"),
                (7, "手机号"),
                (8, "身份证号"),
                (9, "身份证号"),
                (10, "身份证号"),
                (11, "身份证号"),
            ]
        );
        let msg = |row| {
            roster
                .errors
                .iter()
                .find(|e| e.row == row)
                .map(|e| e.message.clone())
                .unwrap()
        };
        assert_eq!(msg(4), "姓名不能为空");
        assert_eq!(msg(5), "身份证号校验位错误");
        assert_eq!(msg(7), "手机号应为 1 开头的 11 位数字");
        assert_eq!(msg(8), "身份证号与第 2 行重复");
        assert!(msg(9).contains("数字"));
        assert_eq!(msg(10), "身份证号不能为空");
        assert_eq!(msg(11), msg(9));
        // Messages never carry the number.
        assert!(
            roster
                .errors
                .iter()
                .all(|e| !e.message.contains("19900101"))
        );
    }

    #[test]
    fn roster_import_xlsx_row_numbers_are_absolute() {
        // Header at C4: the user sees the first data row as row 5.
        let rows = vec![vec![s("姓名"), s("身份证号")], vec![s("张三"), s("bad")]];
        let roster = read_roster_xlsx(&xlsx_at(&rows, 3, 2), TODAY).unwrap();
        assert_eq!(fields(&roster.errors), [(5, "身份证号")]);
        assert_eq!(roster.errors[0].message, "身份证号应为 18 位，实际 3 位");
    }

    #[test]
    fn roster_import_missing_and_duplicate_columns_fail_the_file() {
        let csv = "姓名,手机号\n张三,13800138000\n";
        let err = read_roster_csv(csv.as_bytes(), TODAY).unwrap_err();
        assert_eq!(err, ImportError::MissingColumn("身份证号"));
        assert!(err.to_string().contains("“身份证号”"));
        let err = read_roster_csv("身份证号\n".as_bytes(), TODAY).unwrap_err();
        assert_eq!(err, ImportError::MissingColumn("姓名"));
        let err = read_roster_csv("姓名,身份证号,姓名\n".as_bytes(), TODAY).unwrap_err();
        assert_eq!(err, ImportError::DuplicateColumn("姓名"));
        let x = xlsx(&[vec![s("姓名"), s("手机号")]]);
        assert_eq!(
            read_roster_xlsx(&x, TODAY).unwrap_err(),
            ImportError::MissingColumn("身份证号")
        );
        assert_eq!(
            read_roster_csv(b"\n\n", TODAY).unwrap_err(),
            ImportError::Empty
        );
        assert_eq!(
            read_roster_xlsx(&xlsx(&[]), TODAY).unwrap_err(),
            ImportError::Empty
        );
    }

    #[test]
    fn roster_import_csv_with_and_without_bom() {
        let text = format!(
            "工种,姓名,身份证号,班组\n钢筋工,张三,{},二班\n,,,\n瓦工,李四,{},\n",
            a(),
            b()
        );
        for bytes in [
            text.clone().into_bytes(),
            [UTF8_BOM, text.as_bytes()].concat(),
        ] {
            let roster = read_roster_csv(&bytes, TODAY).unwrap();
            assert!(roster.errors.is_empty(), "{:?}", roster.errors);
            let got: Vec<_> = roster
                .rows
                .iter()
                .map(|r| {
                    (
                        r.row,
                        r.name.as_str(),
                        r.trade.as_deref(),
                        r.team.as_deref(),
                    )
                })
                .collect();
            // The blank line 3 is skipped but counted.
            assert_eq!(
                got,
                [
                    (2, "张三", Some("钢筋工"), Some("二班")),
                    (4, "李四", Some("瓦工"), None)
                ]
            );
        }
        // read_roster tells CSV from XLSX by content.
        assert_eq!(read_roster(text.as_bytes(), TODAY).unwrap().rows.len(), 2);
        let x = xlsx(&[vec![s("姓名"), s("身份证号")], vec![s("张三"), S(a())]]);
        assert_eq!(read_roster(&x, TODAY).unwrap().rows.len(), 1);
    }

    #[test]
    fn roster_import_gbk_csv_is_refused_with_the_encoding_message() {
        // "姓名,身份证号\n张三,…" in GBK.
        let mut gbk: Vec<u8> = vec![0xD0, 0xD5, 0xC3, 0xFB, b','];
        gbk.extend([0xC9, 0xED, 0xB7, 0xDD, 0xD6, 0xA4, 0xBA, 0xC5, b'\n']);
        gbk.extend([0xD5, 0xC5, 0xC8, 0xFD, b',']);
        gbk.extend(a().as_bytes());
        let err = read_roster_csv(&gbk, TODAY).unwrap_err();
        assert_eq!(err, ImportError::NotUtf8);
        assert_eq!(
            err.to_string(),
            "文件不是 UTF-8 编码（请在 Excel 中另存为“CSV UTF-8”）"
        );
        assert_eq!(read_roster(&gbk, TODAY).unwrap_err(), ImportError::NotUtf8);
    }

    #[test]
    fn roster_import_csv_quoting_and_long_fields() {
        let long = "名".repeat(MAX_NAME_CHARS + 1);
        let text = format!(
            "姓名,身份证号,手机号\n\"张,三\",{},\n{long},{},\n",
            a(),
            b()
        );
        let roster = read_roster_csv(text.as_bytes(), TODAY).unwrap();
        assert_eq!(roster.rows[0].name, "张,三");
        assert_eq!(fields(&roster.errors), [(3, "姓名")]);
        assert_eq!(
            read_roster_csv("姓名,身份证号\n\"张三,1\n".as_bytes(), TODAY).map(|r| r.rows.len()),
            Ok(0),
            "an unterminated quote reads to the end as one field"
        );
    }

    #[test]
    fn roster_import_row_cap() {
        let mut text = String::from("姓名,身份证号\n");
        for _ in 0..=MAX_ROWS {
            text.push_str("张三,x\n");
        }
        assert_eq!(
            read_roster_csv(text.as_bytes(), TODAY).unwrap_err(),
            ImportError::TooManyRows { max: MAX_ROWS }
        );
        // Exactly the cap is fine (each row has a bad ID, so each is an error).
        let ok = text.replacen("张三,x\n", "", 1);
        assert_eq!(
            read_roster_csv(ok.as_bytes(), TODAY).unwrap().errors.len(),
            MAX_ROWS
        );
    }

    /// A zip of `(path, bytes)`; `None` bytes make a directory.
    fn zip_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default();
        for (path, data) in entries {
            match data {
                Some(d) => {
                    w.start_file(*path, opts).unwrap();
                    w.write_all(d).unwrap();
                }
                None => w.add_directory(*path, opts).unwrap(),
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn row_for(idcard: &str, row: u32) -> ImportRow {
        ImportRow {
            row,
            name: "张三".into(),
            idcard: IdCardNo::parse(idcard, TODAY).unwrap(),
            phone: None,
            team: None,
            trade: None,
        }
    }

    #[test]
    fn roster_import_photo_zip() {
        let c = id("33010219800101001");
        let d = id("33010219800101002");
        let big = vec![0u8; 2000]; // compresses well: the declared size catches it
        let b_lower = format!("照片/{}.JPG", b().to_lowercase());
        let entries: Vec<(String, Option<&[u8]>)> = vec![
            ("照片/".into(), None),
            (format!("照片/{}.jpg", a()), Some(b"jpeg-a")),
            (b_lower, Some(b"jpeg-b")),
            (format!("{c}.png"), Some(&big)),
            (format!("__MACOSX/照片/._{}.jpg", a()), Some(b"junk")),
            (".DS_Store".into(), Some(b"junk")),
            ("照片/张三.jpg".into(), Some(b"x")),
            ("说明.txt".into(), Some(b"x")),
            (format!("别处/{}.jpeg", a()), Some(b"jpeg-a2")),
            (format!("{d}.jpeg"), Some(b"jpeg-d")),
        ];
        let refs: Vec<(&str, Option<&[u8]>)> =
            entries.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        let z = read_photo_zip(&zip_of(&refs), 1024).unwrap();

        assert_eq!(z.photo_for(&row_for(&a(), 2)), Ok(Some(&b"jpeg-a"[..])));
        assert_eq!(z.photo_for(&row_for(&b(), 3)), Ok(Some(&b"jpeg-b"[..])));
        let err = z.photo_for(&row_for(&c, 4)).unwrap_err();
        assert_eq!((err.row, err.field.as_str()), (4, "照片"));
        assert_eq!(err.message, "照片过大（2 KB，最大 1 KB）");
        assert_eq!(z.photo_for(&row_for(&id("33010219800101003"), 5)), Ok(None));

        let problems: Vec<(&str, &str)> = z
            .problems
            .iter()
            .map(|p| (p.file.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(problems[0].0, "照片/张三.jpg");
        assert!(problems[0].1.starts_with("文件名不是有效的身份证号"));
        assert_eq!(problems[1].0, "说明.txt");
        // The duplicate is named by masked paths only.
        assert!(problems[2].0.starts_with("别处/330102********"));
        assert!(problems[2].1.contains("照片/330102********"));
        assert!(z.problems.iter().all(|p| !p.file.contains("19900101")));

        // d has a photo but no row; c is oversize and has no row either.
        let unmatched = z.unmatched(&[row_for(&a(), 2), row_for(&b(), 3)]);
        assert_eq!(unmatched.len(), 2);
        assert!(
            unmatched
                .iter()
                .all(|p| p.message == "花名册中没有这个身份证号")
        );
        assert!(format!("{z:?}").contains("photos: 3"));
    }

    #[test]
    fn roster_import_photo_zip_limits() {
        assert_eq!(
            read_photo_zip(b"not a zip", 1000).unwrap_err(),
            PhotoZipError::NotZip
        );
        let names: Vec<String> = (0..=MAX_ZIP_ENTRIES).map(|i| format!("{i}.txt")).collect();
        let refs: Vec<(&str, Option<&[u8]>)> =
            names.iter().map(|n| (n.as_str(), Some(&b""[..]))).collect();
        assert_eq!(
            read_photo_zip(&zip_of(&refs), 1000).unwrap_err(),
            PhotoZipError::TooManyEntries {
                max: MAX_ZIP_ENTRIES
            }
        );
        // Exactly at the limit the photo is accepted.
        let name = format!("{}.jpg", a());
        let z = read_photo_zip(&zip_of(&[(&name, Some(&[7u8; 1000][..]))]), 1000).unwrap();
        assert_eq!(z.photos.values().next().map(Vec::len), Some(1000));
        assert!(z.oversize.is_empty());

        // A declared size that lies: a stored 2000-byte entry claiming 500 bytes. Either our cap
        // (max + 1 bytes read → oversize) or the zip reader's own size check (→ unreadable) stops
        // it; never a crash, never a photo.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file(name.as_str(), stored).unwrap();
        w.write_all(&[9u8; 2000]).unwrap();
        let mut bytes = w.finish().unwrap().into_inner();
        let lie = 500u32.to_le_bytes();
        bytes[22..26].copy_from_slice(&lie); // local header: uncompressed size
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&lie);
        let z = read_photo_zip(&bytes, 1000).unwrap();
        assert!(z.photos.is_empty(), "{z:?}");
        let oversize: Vec<u64> = z.oversize.values().copied().collect();
        assert!(oversize == [1001] || z.problems.len() == 1, "{z:?}");
    }

    #[test]
    fn roster_import_error_reports() {
        let errors = vec![
            RowError::new(4, "姓名", "姓名不能为空"),
            RowError::new(8, "身份证号", "身份证号与第 2 行重复, 请检查"),
        ];
        let csv_bytes = error_report_csv(&errors);
        assert!(csv_bytes.starts_with(UTF8_BOM));
        let text = std::str::from_utf8(&csv_bytes[3..]).unwrap();
        assert_eq!(
            text,
            "行号,字段,错误\n4,姓名,姓名不能为空\n8,身份证号,\"身份证号与第 2 行重复, 请检查\"\n"
        );
        assert_eq!(
            error_report_csv(&[]),
            [UTF8_BOM, "行号,字段,错误\n".as_bytes()].concat()
        );

        let bytes = error_report_xlsx(&errors).unwrap();
        let mut wb = Xlsx::new(Cursor::new(bytes)).unwrap();
        let r = wb.worksheet_range("导入错误").unwrap();
        let cell = |row, col| r.get_value((row, col)).cloned().unwrap_or(Data::Empty);
        assert_eq!(cell(0, 2), Data::String("错误".into()));
        assert_eq!(cell(1, 0), Data::Float(4.0));
        assert_eq!(cell(2, 1), Data::String("身份证号".into()));
        assert_eq!(
            cell(2, 2),
            Data::String("身份证号与第 2 行重复, 请检查".into())
        );
    }

    #[test]
    fn roster_import_valid_phone() {
        assert!(valid_phone("13800138000"));
        assert!(!valid_phone("23800138000"));
        assert!(!valid_phone("1380013800"));
        assert!(!valid_phone("138001380001"));
        assert!(!valid_phone("1380013800a"));
        assert!(!valid_phone("１3800138000"));
    }

    proptest! {
        #[test]
        fn roster_import_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = read_roster_csv(&bytes, TODAY);
            let _ = read_roster_xlsx(&bytes, TODAY);
            let _ = read_roster(&bytes, TODAY);
            let _ = read_photo_zip(&bytes, 100);
            let zipped = [ZIP_MAGIC, &bytes].concat();
            let _ = read_roster(&zipped, TODAY);
            let _ = read_photo_zip(&zipped, 100);
        }

        #[test]
        fn roster_import_corrupted_files_never_panic(
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            // Damage real files: readers see plausible structure with broken insides.
            let mut x = xlsx(&[vec![s("姓名"), s("身份证号")], vec![s("张三"), S(a())]]);
            let name = format!("{}.jpg", a());
            let mut z = zip_of(&[(&name, Some(&[1u8; 300][..]))]);
            for file in [&mut x, &mut z] {
                for (i, v) in &flips {
                    let at = i.index(file.len());
                    file[at] = *v;
                }
            }
            let _ = read_roster_xlsx(&x, TODAY);
            let _ = read_roster_xlsx(&x[..cut.index(x.len())], TODAY);
            let _ = read_photo_zip(&z, 100);
            let _ = read_photo_zip(&z[..cut.index(z.len())], 100);
        }

        #[test]
        fn roster_import_arbitrary_csv_text_never_panics(cells in prop::collection::vec("\\PC{0,20}", 0..30)) {
            let mut text = String::from("姓名,身份证号,手机号,班组,工种\n");
            for row in cells.chunks(5) {
                text.push_str(&row.join(","));
                text.push('\n');
            }
            let roster = read_roster_csv(text.as_bytes(), TODAY).unwrap_or_default();
            for r in &roster.rows {
                prop_assert!(!r.name.is_empty());
            }
        }
    }
}
