//! Roster import (花名册导入) into a project: the rows of a `.xlsx`/`.csv` file
//! ([`rollcall_rules::roster`]) and the photos of a `.zip` named by ID number become workers
//! enrolled through [`workers::enrol`] — the same rules as a single enrolment, face rules
//! included — or, for a number already on the platform, members of the project. Teams are
//! found by name in the project and created when missing. Every refused row is reported with
//! its row number and field, and the report is kept as `.csv` and `.xlsx` in the file store
//! for the user to download through a signed URL.

use bytes::Bytes;
use rollcall_protocol::time::today_beijing;

use crate::accounts::Principal;
use crate::runtime::util::now_ms;
use crate::services::workers::{self, EnrolError, Enrolment};
use crate::state::App;
use crate::store::StoreError;
use crate::store::console::Team;
use rollcall_rules::roster::{self, ImportRow, PhotoZip, RowError};

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    /// Workers enrolled on the platform by this import.
    pub enrolled: Vec<i64>,
    /// Workers already on the platform who joined the project.
    pub joined: Vec<i64>,
    pub errors: Vec<RowError>,
    /// Photos of the zip that matched no row or could not be read (file, message).
    pub photo_problems: Vec<(String, String)>,
    /// File-store keys of the error report (`.csv`, `.xlsx`), when there were errors.
    pub report_keys: Option<(String, String)>,
}

/// Why a whole import failed (row problems are in [`ImportOutcome::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    File(#[from] roster::ImportError),
    #[error(transparent)]
    Photos(#[from] roster::PhotoZipError),
    #[error("无权在该项目导入")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the error report: {0}")]
    Io(#[from] std::io::Error),
}

/// The column a field error of an enrolment belongs to.
fn column_of(field: &str) -> &'static str {
    match field {
        "idcardNo" => roster::COL_IDCARD,
        "name" => roster::COL_NAME,
        "phone" => roster::COL_PHONE,
        "teamId" => roster::COL_TEAM,
        "trade" => roster::COL_TRADE,
        _ => roster::FIELD_PHOTO,
    }
}

/// Imports a roster file (and optionally a photo zip) into a project.
pub async fn import(
    app: &App,
    by: &Principal,
    project_id: i64,
    roster_bytes: Bytes,
    photo_zip: Option<Bytes>,
) -> Result<ImportOutcome, ImportFailure> {
    if !by.can_write() || !by.sees_project(project_id) {
        return Err(ImportFailure::Forbidden);
    }
    let now = now_ms();
    // Reading the spreadsheet and the zip is CPU work of its own: on the blocking pool, so
    // that device requests on the runtime's worker are not held up while it runs.
    let today = today_beijing(now);
    let max_photo = app.settings.max_photo_bytes as u64;
    let read = tokio::task::spawn_blocking(move || -> Result<_, ImportFailure> {
        let roster = roster::read_roster(&roster_bytes, today)?;
        let photos = photo_zip
            .map(|bytes| roster::read_photo_zip(&bytes, max_photo))
            .transpose()?;
        Ok((roster, photos))
    })
    .await
    .map_err(|e| ImportFailure::Io(std::io::Error::other(e.to_string())))?;
    let (roster, photos) = read?;
    let mut out = ImportOutcome {
        errors: roster.errors,
        ..ImportOutcome::default()
    };
    if let Some(p) = &photos {
        out.photo_problems = p
            .problems
            .iter()
            .chain(p.unmatched(&roster.rows).iter())
            .map(|p| (p.file.clone(), p.message.clone()))
            .collect();
    }
    let mut teams: Vec<Team> = app.store.teams(project_id).await?;
    for row in &roster.rows {
        if let Err(e) = import_row(
            app,
            by,
            project_id,
            row,
            photos.as_ref(),
            &mut teams,
            &mut out,
        )
        .await
        {
            out.errors.push(e);
        }
    }
    out.errors.sort_by_key(|e| e.row);
    if !out.errors.is_empty() {
        let id = app.ids.next();
        let csv_key = format!("reports/import-{id}.csv");
        let xlsx_key = format!("reports/import-{id}.xlsx");
        app.blobs
            .put(&csv_key, &roster::error_report_csv(&out.errors))
            .await?;
        let xlsx = roster::error_report_xlsx(&out.errors)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        app.blobs.put(&xlsx_key, &xlsx).await?;
        out.report_keys = Some((csv_key, xlsx_key));
    }
    Ok(out)
}

async fn import_row(
    app: &App,
    by: &Principal,
    project_id: i64,
    row: &ImportRow,
    photos: Option<&PhotoZip>,
    teams: &mut Vec<Team>,
    out: &mut ImportOutcome,
) -> Result<(), RowError> {
    let store_err = |e: StoreError| {
        tracing::error!(error = %e, row = row.row, "roster import");
        RowError {
            row: row.row,
            field: String::new(),
            message: "内部错误，请重试".to_owned(),
        }
    };
    let team_id = match &row.team {
        Some(name) => Some(
            team_named(app, project_id, name, teams)
                .await
                .map_err(store_err)?,
        ),
        None => None,
    };
    let photo = match photos {
        Some(p) => p.photo_for(row)?.map(<[u8]>::to_vec),
        None => None,
    };
    if let Some(existing) = app
        .store
        .worker_by_idcard(row.idcard.as_str())
        .await
        .map_err(store_err)?
    {
        // Already on the platform: enrolled once, now joins this project too — when the row
        // names them as enrolled (ID-card number and name together, as
        // `POST /projects/{id}/workers` with `idcardNo` and `name`): a number alone does
        // not pull a worker of another project, their name and face, onto this project.
        if existing.name.trim() != row.name.trim() {
            return Err(RowError {
                row: row.row,
                field: roster::COL_NAME.to_owned(),
                message: "该身份证号已登记的工人姓名与本行不符".to_owned(),
            });
        }
        if workers::blacklisted_among(app, &[existing.person_id])
            .await
            .map_err(store_err)?
            .is_empty()
        {
            workers::join_with_details(
                app,
                project_id,
                existing.person_id,
                team_id,
                row.trade.as_deref(),
            )
            .await
            .map_err(store_err)?;
            out.joined.push(existing.person_id);
            return Ok(());
        }
        return Err(RowError {
            row: row.row,
            field: roster::COL_IDCARD.to_owned(),
            message: "该工人在黑名单中，不能进场".to_owned(),
        });
    }
    let Some(photo) = photo else {
        return Err(RowError {
            row: row.row,
            field: roster::FIELD_PHOTO.to_owned(),
            message: "新工人须有人脸照片（照片压缩包中以身份证号命名的文件）".to_owned(),
        });
    };
    let enrolment = Enrolment {
        idcard_no: row.idcard.as_str().to_owned(),
        name: row.name.clone(),
        phone: row.phone.clone(),
        photo,
        project_id: Some(project_id),
        team_id,
        trade: row.trade.clone(),
        ..Enrolment::default()
    };
    match workers::enrol(app, by, enrolment).await {
        Ok(w) => {
            out.enrolled.push(w.person_id);
            Ok(())
        }
        Err(EnrolError::Field(f)) => Err(RowError {
            row: row.row,
            field: column_of(&f.field).to_owned(),
            message: f.message,
        }),
        Err(e @ (EnrolError::Exists { .. } | EnrolError::Forbidden)) => Err(RowError {
            row: row.row,
            field: roster::COL_IDCARD.to_owned(),
            message: e.to_string(),
        }),
        Err(EnrolError::Store(e)) => Err(store_err(e)),
        Err(EnrolError::Io(e)) => Err(store_err(StoreError::Corrupt(e.to_string()))),
    }
}

/// The project's team of that name, created if missing.
async fn team_named(
    app: &App,
    project_id: i64,
    name: &str,
    teams: &mut Vec<Team>,
) -> Result<i64, StoreError> {
    if let Some(t) = teams.iter().find(|t| t.name == name) {
        return Ok(t.id);
    }
    let team = Team {
        id: app.ids.next(),
        project_id,
        name: name.to_owned(),
        leader: None,
        created_at: now_ms(),
    };
    app.store.create_team(&team).await?;
    let id = team.id;
    teams.push(team);
    Ok(id)
}
