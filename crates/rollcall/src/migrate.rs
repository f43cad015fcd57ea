//! `rollcall migrate-data`: moves an installation to another database, typically an embedded
//! SQLite installation to PostgreSQL, and (with `--photos-to`) its photos from a node's disk
//! into an S3-compatible store. The copies, their safety checks and their verification live
//! in `rollcall_platform::store::copy`; this module parses the flags, shows progress and
//! prints the summaries.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rollcall_platform::store::blobs::open_s3;
use rollcall_platform::store::copy::photos::{PhotoSummary, copy_photos};
use rollcall_platform::store::copy::{self, CopyError, Options, Progress, Summary};
use rollcall_platform::util::redact_url;

/// Flags of `rollcall migrate-data`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The installation to copy, e.g. sqlite:///var/lib/rollcall/rollcall.db (stop its platform first). / 源数据库
    #[arg(long, value_name = "URL", required_unless_present = "photos_only")]
    pub from: Option<String>,
    /// The database to copy into, e.g. postgres://rollcall@db.example/rollcall; it is migrated, and must be empty. / 目标数据库
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Delete the target's rows first if it is not empty (never the source's). / 目标库非空时先清空
    #[arg(long)]
    pub force: bool,
    /// Rows written per target transaction. / 每个事务写入的行数
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_rows: u32,
    /// Also copy the photos into this S3-compatible store (s3://BUCKET[/PREFIX]; endpoint and keys from AWS_*), re-keying the target's attendance photos. / 同时把照片复制到 S3 兼容存储
    #[arg(long, value_name = "URL")]
    pub photos_to: Option<String>,
    /// The local photo store to copy from (default: files/ beside a SQLite source). / 本地照片目录
    #[arg(long, value_name = "DIR")]
    pub photos_from: Option<PathBuf>,
    /// Copy only the photos, into --photos-to, re-keying the database --to (already migrated). / 只复制照片
    #[arg(long, requires = "photos_to")]
    pub photos_only: bool,
}

/// What the summary says about photos when they were not copied.
const PHOTOS_NOTE: &str = "\
照片 / photos: 人脸与考勤照片是数据目录 files/ 下的文件，不在数据库中，未被复制；请让新平台的
  photo_store（或 --data-dir）指向同一批文件，或用 --photos-to s3://… 把它们复制到共享存储。
  Face and attendance photos are files under the data dir's files/, not database rows, and were
  not copied: point the new platform's photo_store (or --data-dir) at the same files, or copy
  them into shared storage with --photos-to s3://….";

/// Runs the command; exit code 0 on a verified copy, 1 otherwise.
pub fn run(args: MigrateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let photos = match photo_plan(&args) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("rollcall: migrate-data: {message}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(from) = args.from.as_deref().filter(|_| !args.photos_only) {
        println!("迁移数据 / migrating data");
        println!("  源 / from: {}", redact_url(from));
        println!("  目标 / to: {}", redact_url(&args.to));
        let options = Options {
            force: args.force,
            batch_rows: args.batch_rows as usize,
        };
        let mut display = Display::default();
        let result = runtime.block_on(copy::copy_database(from, &args.to, &options, &mut |p| {
            display.show(p)
        }));
        display.finish();
        match result {
            Ok(summary) => print_summary(&summary, photos.is_none()),
            Err(e) => {
                eprintln!("rollcall: migrate-data: {e}");
                if matches!(e, CopyError::TargetNotEmpty(_)) {
                    eprintln!(
                        "  目标库已有数据。若确认要用源数据替换它，请加 --force。\n  \
                         The target already holds data; add --force to replace it with the source's."
                    );
                }
                return ExitCode::FAILURE;
            }
        }
    }
    let Some((dir, url)) = photos else {
        return ExitCode::SUCCESS;
    };
    println!("复制照片 / copying photos");
    println!("  源 / from: {}", dir.display());
    println!("  目标 / to: {url}");
    let result = runtime.block_on(async {
        let to = open_s3(&url, &Default::default()).map_err(|e| e.to_string())?;
        to.probe().await.map_err(|e| format!("{url}: {e}"))?;
        let bar = ProgressBar::new_spinner();
        let summary = copy_photos(&dir, &to, &args.to, &mut |s: &PhotoSummary| {
            bar.set_message(format!(
                "{} files, {} attendance photos, {} MB",
                s.files,
                s.attendance,
                s.bytes / 1_000_000
            ));
            bar.tick();
        })
        .await
        .map_err(|e| e.to_string());
        bar.finish_and_clear();
        summary
    });
    match result {
        Ok(s) => {
            println!(
                "完成 / done: {} 个文件、{} 张考勤照片（{} 字节）已复制并逐一读回核对，考勤照片的键已在目标库中更新，用时 {} 秒 / \
                 {} files and {} attendance photos ({} bytes) copied and read back, attendance photo keys updated in the target, {} s.",
                s.files,
                s.attendance,
                s.bytes,
                seconds(s.elapsed),
                s.files,
                s.attendance,
                s.bytes,
                seconds(s.elapsed)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rollcall: migrate-data: photos: {e}");
            eprintln!(
                "  已复制的照片保留在目标存储中，可直接重新运行。 / What was copied stays; run it again to finish."
            );
            ExitCode::FAILURE
        }
    }
}

/// Where photos are copied from and to, when `--photos-to` is given.
fn photo_plan(args: &MigrateArgs) -> Result<Option<(PathBuf, String)>, String> {
    let Some(url) = args.photos_to.clone() else {
        return Ok(None);
    };
    let dir = match (&args.photos_from, args.from.as_deref().and_then(sqlite_dir)) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.join("files"),
        (None, None) => {
            return Err(
                "--photos-to needs --photos-from DIR (the local photo store) \
                        / 请用 --photos-from 指定本地照片目录"
                    .into(),
            );
        }
    };
    Ok(Some((dir, url)))
}

/// The directory of a `sqlite://` database file.
fn sqlite_dir(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    Path::new(path).parent().map(Path::to_path_buf)
}

/// A progress bar per table (drawn only on a terminal).
#[derive(Default)]
struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    fn show(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::Cleared { rows } => {
                println!("  已清空目标库 / emptied the target: {rows} rows deleted (--force)");
            }
            Progress::Started { table, rows } => {
                self.finish();
                let bar = ProgressBar::new(rows);
                bar.set_style(
                    ProgressStyle::with_template("  {msg:<22} [{bar:30}] {pos}/{len} {per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(table);
                self.bar = Some(bar);
            }
            Progress::Copied { copied, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(copied);
                }
            }
            Progress::Verified(_) => self.finish(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(summary: &Summary, photos_left: bool) {
    println!(
        "  {}{}{}{}",
        pad("表 / table", 22, false),
        pad("源 / source", 13, true),
        pad("目标 / target", 15, true),
        pad("秒 / s", 9, true)
    );
    for t in &summary.tables {
        println!(
            "  {}{}{}{}",
            pad(t.table, 22, false),
            pad(&t.source_rows.to_string(), 13, true),
            pad(&t.target_rows.to_string(), 15, true),
            pad(&seconds(t.elapsed), 9, true)
        );
    }
    println!(
        "完成 / done: {} rows in {} tables ({} → {}), {} s. 每张表的行数与内容摘要均一致 / \
         row counts and content digests match on every table.",
        summary.total_rows(),
        summary.tables.len(),
        summary.source_backend,
        summary.target_backend,
        seconds(summary.elapsed)
    );
    if photos_left {
        println!("{PHOTOS_NOTE}");
    }
}

/// Pads `text` to `width` terminal columns (CJK characters take two).
fn pad(text: &str, width: usize, right_align: bool) -> String {
    let used: usize = text
        .chars()
        .map(|c| if u32::from(c) >= 0x2E80 { 2 } else { 1 })
        .sum();
    let fill = " ".repeat(width.saturating_sub(used));
    if right_align {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}
