//! Worker photos from a `.zip` named by ID number, bounded against zip bombs (see the
//! parent module's "Photos" decision).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use super::{FIELD_PHOTO, ImportRow, MAX_ZIP_ENTRIES, MAX_ZIP_TOTAL_BYTES, RowError};
use crate::idcard::{self, IdCardNo};

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
