//! `rollcall migrate-data`: moves an installation to another database, typically an embedded
//! SQLite installation to PostgreSQL. The copy itself, its safety checks and its verification
//! live in `rollcall_platform::store::copy`; this module parses the flags, shows progress
//! and prints the per-table summary.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rollcall_platform::store::copy::{self, CopyError, Options, Progress, Summary};
use rollcall_platform::util::redact_url;

/// Flags of `rollcall migrate-data`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The installation to copy, e.g. sqlite:///var/lib/rollcall/rollcall.db (stop its platform first). / 源数据库
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The database to copy into, e.g. postgres://rollcall@db.example/rollcall; it is migrated, and must be empty. / 目标数据库
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Delete the target's rows first if it is not empty (never the source's). / 目标库非空时先清空
    #[arg(long)]
    pub force: bool,
    /// Rows written per target transaction. / 每个事务写入的行数
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_rows: u32,
}

/// What the summary says about photos, which are files and not in the database.
const PHOTOS_NOTE: &str = "\
照片 / photos: 人脸与考勤照片是数据目录 files/ 下的文件，不在数据库中，未被复制；请让新平台的
  photo_store（或 --data-dir）指向同一批文件。
  Face and attendance photos are files under the data dir's files/, not database rows, and were
  not copied: point the new platform's photo_store (or --data-dir) at the same files.";

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
    println!("迁移数据 / migrating data");
    println!("  源 / from: {}", redact_url(&args.from));
    println!("  目标 / to: {}", redact_url(&args.to));
    let options = Options {
        force: args.force,
        batch_rows: args.batch_rows as usize,
    };
    let mut display = Display::default();
    let result = runtime.block_on(copy::copy_database(
        &args.from,
        &args.to,
        &options,
        &mut |p| display.show(p),
    ));
    display.finish();
    match result {
        Ok(summary) => {
            print_summary(&summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rollcall: migrate-data: {e}");
            if matches!(e, CopyError::TargetNotEmpty(_)) {
                eprintln!(
                    "  目标库已有数据。若确认要用源数据替换它，请加 --force。\n  \
                     The target already holds data; add --force to replace it with the source's."
                );
            }
            ExitCode::FAILURE
        }
    }
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

fn print_summary(summary: &Summary) {
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
    println!("{PHOTOS_NOTE}");
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
