//! Loads what the reports need from the store and hands it to the pure rules of
//! [`rollcall_rules::reports`]: a project's punches over a time range, the daily summary per project
//! (first in, last out, hours — with names, teams and trades), and the monthly sheet of one
//! or more projects as `.xlsx` bytes. Used by the admin API and the console alike.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;

use crate::state::App;
use crate::store::{AttendanceQuery, Project, StoreError, Worker};
use rollcall_rules::idcard;
use rollcall_rules::reports::{self, DaySummary, Punch, ReportError};

/// The store's page size when reading a range of records.
const PAGE: u32 = 1000;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportFailure {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the workbook on the blocking pool failed (a panic there).
    #[error("writing the report: {0}")]
    Writer(String),
}

/// One worker's line of a daily summary.
#[derive(Debug, Clone)]
pub struct DailyLine {
    pub person_id: i64,
    pub name: String,
    /// Masked ID-card number.
    pub idcard: String,
    pub team: Option<String>,
    pub trade: Option<String>,
    pub summary: DaySummary,
}

/// The punches of a project's records with `from <= recordTime < to`, whatever their order
/// of arrival. Records whose person id is not a platform person id are left out.
pub async fn punches(
    app: &App,
    project_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Punch>, StoreError> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = app
            .store
            .attendance(&AttendanceQuery {
                project_id: Some(project_id),
                person_id: None,
                sn: None,
                from: Some(from),
                to: Some(to),
                before_record_id: before,
                limit: PAGE,
            })
            .await?;
        before = page.last().map(|r| r.record_id);
        let full = page.len() == PAGE as usize;
        out.extend(page.into_iter().filter_map(|r| {
            Some(Punch {
                person_id: r.person_id.parse().ok()?,
                at_ms: r.record_time,
                direction: r.direction,
            })
        }));
        if !full {
            return Ok(out);
        }
    }
}

/// `[start, end)` of a Beijing day in epoch ms.
fn day_range(day: Date) -> Result<(i64, i64), ReportFailure> {
    let bad = || ReportError::InvalidMonth {
        year: day.year(),
        month: day.month() as u8,
    };
    let start = reports::beijing_day_start_ms(day).ok_or_else(bad)?;
    let next = day.tomorrow().map_err(|_| bad())?;
    let end = reports::beijing_day_start_ms(next).ok_or_else(bad)?;
    Ok((start, end))
}

/// Names, masked ID numbers, teams and trades of persons in a project.
struct People {
    workers: HashMap<i64, Worker>,
    team_of: HashMap<i64, (Option<String>, Option<String>)>,
}

async fn people(app: &App, project_id: i64, ids: &[i64]) -> Result<People, StoreError> {
    let workers = app
        .store
        .workers_by_ids(ids)
        .await?
        .into_iter()
        .map(|w| (w.person_id, w))
        .collect();
    let teams: HashMap<i64, String> = app
        .store
        .teams(project_id)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let team_of = app
        .store
        .members(project_id)
        .await?
        .into_iter()
        .map(|m| {
            let team = m.team_id.and_then(|t| teams.get(&t).cloned());
            (m.person_id, (team, m.trade))
        })
        .collect();
    Ok(People { workers, team_of })
}

/// The daily summary of a project on a Beijing day: one line per person who punched.
pub async fn daily(app: &App, project_id: i64, day: Date) -> Result<Vec<DailyLine>, ReportFailure> {
    let (start, end) = day_range(day)?;
    let summaries = reports::summarize(&punches(app, project_id, start, end).await?);
    let ids: Vec<i64> = summaries.iter().map(|s| s.person_id).collect();
    let people = people(app, project_id, &ids).await?;
    Ok(summaries
        .into_iter()
        .map(|summary| {
            let w = people.workers.get(&summary.person_id);
            let (team, trade) = people
                .team_of
                .get(&summary.person_id)
                .cloned()
                .unwrap_or_default();
            DailyLine {
                person_id: summary.person_id,
                name: w.map_or_else(|| "（未知人员）".to_owned(), |w| w.name.clone()),
                idcard: w.map_or_else(String::new, |w| idcard::mask(&w.idcard_no)),
                team,
                trade,
                summary,
            }
        })
        .collect())
}

/// The monthly attendance sheet of the projects (one worksheet each) as `.xlsx` bytes. A
/// project's rows are its members who were active during the month and everyone who
/// punched in it, in person-id order.
pub async fn monthly(
    app: &App,
    projects: &[Project],
    (year, month): (i16, u8),
) -> Result<Vec<u8>, ReportFailure> {
    let first =
        Date::new(year, month as i8, 1).map_err(|_| ReportError::InvalidMonth { year, month })?;
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|_| ReportError::InvalidMonth { year, month })?;
    let (start, _) = day_range(first)?;
    let (end, _) = day_range(next)?;
    let mut sheet = reports::MonthlySheet {
        month: (year, month),
        projects: Vec::with_capacity(projects.len()),
    };
    for project in projects {
        let summaries = reports::summarize(&punches(app, project.id, start, end).await?);
        let mut ids: BTreeSet<i64> = summaries.iter().map(|s| s.person_id).collect();
        for m in app.store.members(project.id).await? {
            let active_in_month = m.joined_at < end && m.exited_at.is_none_or(|x| x >= start);
            if active_in_month && !m.blacklisted {
                ids.insert(m.person_id);
            }
        }
        let ids: Vec<i64> = ids.into_iter().collect();
        let people = people(app, project.id, &ids).await?;
        let rows = ids
            .iter()
            .map(|&person| {
                let w = people.workers.get(&person);
                let (team, trade) = people.team_of.get(&person).cloned().unwrap_or_default();
                reports::WorkerMonth {
                    name: w.map_or_else(|| format!("（未知人员 {person}）"), |w| w.name.clone()),
                    masked_idcard: w.map_or_else(String::new, |w| idcard::mask(&w.idcard_no)),
                    team,
                    trade,
                    days: reports::month_days(&summaries, person, (year, month)),
                }
            })
            .collect();
        sheet.projects.push(reports::ProjectMonth {
            name: project.name.clone(),
            rows,
        });
    }
    // Writing the workbook is CPU work of its own: on the blocking pool, so that device
    // requests on the runtime's worker are not held up while it runs.
    let written = tokio::task::spawn_blocking(move || reports::write_monthly(&sheet))
        .await
        .map_err(|e| ReportFailure::Writer(e.to_string()))?;
    Ok(written?)
}

/// `YYYY-MM` → (year, month).
pub fn parse_month(s: &str) -> Option<(i16, u8)> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i16, u8) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (1970..=9999).contains(&y)).then_some((y, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse() {
        assert_eq!(parse_month("2026-11"), Some((2026, 11)));
        assert_eq!(parse_month("2026-1"), Some((2026, 1)));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("11/2026"), None);
    }

    #[test]
    fn a_beijing_day_starts_at_16_utc_the_day_before() {
        let (start, end) = day_range(Date::constant(2026, 11, 28)).unwrap();
        // 2026-11-27T16:00:00Z
        assert_eq!(start, 1_795_795_200_000);
        assert_eq!(end - start, 86_400_000);
    }
}
