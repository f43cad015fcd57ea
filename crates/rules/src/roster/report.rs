//! The error report handed back after an import: CSV and `.xlsx`.

use rust_xlsxwriter::{Format, Workbook};

use super::{RowError, UTF8_BOM};
use crate::reports::ReportError;

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
