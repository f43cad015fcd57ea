//! `GET /console`: the overview — devices online and offline, today's headcount per project
//! (distinct workers with attendance today, Beijing time) and the last 30 days' daily
//! headcount as server-rendered SVG bars, and — for projects that report to the national
//! platform — today's attendance not yet accepted there against the 24:00 deadline
//! (docs/UPLINK.md).

use std::collections::{BTreeMap, HashSet};

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::error::ConsoleError;
use super::page::{Ctx, Nav, beijing_day, date, day_start, render};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::AttendanceQuery;

/// Days in the chart.
const CHART_DAYS: i64 = 30;
/// Records read per store call, and at most in all for the chart (a dashboard must stay
/// quick; beyond this the chart says it is partial).
const PAGE: u32 = 1000;
const MAX_SCANNED: usize = 200_000;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    online: usize,
    offline: usize,
    today: String,
    projects: Vec<ProjectToday>,
    total_today: usize,
    bars: Vec<Bar>,
    chart_max: usize,
    partial: bool,
    uplinks: Vec<UplinkToday>,
    /// Time left until today's 24:00 (Beijing), e.g. `5 小时 12 分`.
    time_left: String,
}

/// A reporting project's day against the 24:00 deadline.
struct UplinkToday {
    id: i64,
    name: String,
    enabled: bool,
    records: i64,
    uploaded: i64,
    /// Today's records not yet accepted.
    waiting: i64,
    /// Items refused (any day), with a message each on the items list.
    failed: i64,
    /// Minutes the oldest pending item has waited.
    oldest_minutes: Option<i64>,
    last_error: String,
    /// Behind: something waits longer than `alert_after_ms`, or the deadline is within an
    /// hour and records are still waiting.
    late: bool,
}

struct ProjectToday {
    id: i64,
    name: String,
    headcount: usize,
    devices: usize,
}

/// One bar of the chart, in SVG user units.
struct Bar {
    x: usize,
    y: usize,
    height: usize,
    count: usize,
    label: String,
    /// Every fifth day is labelled under the axis.
    show_label: bool,
}

const CHART_HEIGHT: usize = 160;
const BAR_STEP: usize = 22;

pub async fn show(State(app): State<AppState>, ctx: Ctx) -> Result<Html<String>, ConsoleError> {
    let now = now_ms();
    let devices = services::scope::devices(&app, &ctx.principal, None).await?;
    let online = devices
        .iter()
        .filter(|d| services::devices::is_online(&app, d, now))
        .count();
    let today = beijing_day(now);
    let first_day = today - (CHART_DAYS - 1);
    let projects = ctx.projects(&app).await?;
    // Distinct persons per day, over every visible project (a worker on two sites counts once).
    let mut per_day: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
    let mut rows = Vec::with_capacity(projects.len());
    let mut today_all: HashSet<String> = HashSet::new();
    let mut scanned = 0usize;
    let mut partial = false;
    for p in &projects {
        let mut today_set: HashSet<String> = HashSet::new();
        let (n, cut) = scan(
            &app,
            p.id,
            day_start(first_day),
            MAX_SCANNED.saturating_sub(scanned),
            |day, person| {
                if day == today {
                    today_set.insert(person.to_owned());
                }
                per_day.entry(day).or_default().insert(person.to_owned());
            },
        )
        .await?;
        scanned += n;
        partial |= cut;
        today_all.extend(today_set.iter().cloned());
        rows.push(ProjectToday {
            id: p.id,
            name: p.name.clone(),
            headcount: today_set.len(),
            devices: devices
                .iter()
                .filter(|d| d.project_id == Some(p.id))
                .count(),
        });
    }
    let counts: Vec<(i64, usize)> = (first_day..=today)
        .map(|d| (d, per_day.get(&d).map_or(0, HashSet::len)))
        .collect();
    let chart_max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, (day, count))| {
            let height = count * CHART_HEIGHT / chart_max;
            Bar {
                x: i * BAR_STEP + 4,
                y: CHART_HEIGHT - height + 10,
                height,
                count: *count,
                label: date(day_start(*day))
                    .get(5..)
                    .unwrap_or_default()
                    .to_owned(),
                show_label: (CHART_DAYS as usize - 1 - i).is_multiple_of(5),
            }
        })
        .collect();
    let (uplinks, time_left) = uplinks(&app, &projects, now).await?;
    render(&DashboardPage {
        uplinks,
        time_left,
        nav: ctx.nav("dashboard"),
        online,
        offline: devices.len() - online,
        today: date(now),
        total_today: today_all.len(),
        projects: rows,
        bars,
        chart_max,
        partial,
    })
}

/// Today's uplink state of every visible project that has uplink settings.
async fn uplinks(
    app: &App,
    projects: &[crate::store::Project],
    now: i64,
) -> Result<(Vec<UplinkToday>, String), ConsoleError> {
    let day = crate::uplink::sender::beijing_day(now);
    let left_ms = (day.1 - now).max(0);
    let alert_ms = i64::try_from(app.settings.uplink.alert_after_ms).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for p in projects {
        let Some(config) = app.store.uplink_config(p.id).await? else {
            continue;
        };
        let stats = app.store.uplink_stats(p.id, day).await?;
        let waiting = stats.today_records - stats.today_accepted;
        let oldest = stats.oldest_pending_at.map(|at| now.saturating_sub(at));
        out.push(UplinkToday {
            id: p.id,
            name: p.name.clone(),
            enabled: config.enabled,
            records: stats.today_records,
            uploaded: stats.today_accepted,
            waiting,
            failed: stats.refused,
            oldest_minutes: oldest.map(|ms| ms / 60_000),
            last_error: config.last_error.unwrap_or_default(),
            late: oldest.is_some_and(|ms| ms > alert_ms) || (waiting > 0 && left_ms < 3_600_000),
        });
    }
    let left = format!(
        "{} 小时 {} 分",
        left_ms / 3_600_000,
        left_ms % 3_600_000 / 60_000
    );
    Ok((out, left))
}

/// Reads a project's records since `from`, newest first, calling `each(day, person)`;
/// returns how many were read and whether `budget` cut the scan short. Records of persons
/// the platform does not know are not workers and are not counted.
async fn scan(
    app: &App,
    project_id: i64,
    from: i64,
    budget: usize,
    mut each: impl FnMut(i64, &str),
) -> Result<(usize, bool), ConsoleError> {
    let mut cursor = None;
    let mut read = 0usize;
    loop {
        if read >= budget {
            return Ok((read, true));
        }
        let page = app
            .store
            .attendance(&AttendanceQuery {
                project_id: Some(project_id),
                from: Some(from),
                before_record_id: cursor,
                limit: PAGE,
                ..AttendanceQuery::default()
            })
            .await?;
        read += page.len();
        for r in &page {
            if !r.flags.iter().any(|f| f == "unknown_person") {
                each(beijing_day(r.record_time), &r.person_id);
            }
        }
        if page.len() < PAGE as usize {
            return Ok((read, false));
        }
        cursor = page.last().map(|r| r.record_id);
    }
}
