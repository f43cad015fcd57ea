//! Roster import: the file rules, row by row, and the photo zip bounds.

use super::*;
use crate::idcard;
use proptest::prelude::*;
use rust_xlsxwriter::Workbook;
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
    let refs: Vec<(&str, Option<&[u8]>)> = entries.iter().map(|(p, d)| (p.as_str(), *d)).collect();
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
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
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
