//! `GET /console`: the overview — devices online and offline, today's headcount per project
//! (distinct workers with attendance today, Beijing time) and the last 30 days' daily
//! headcount as server-rendered SVG bars.

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
    let mut devices = app.store.devices(None).await?;
    devices.retain(|d| ctx.principal.sees_device(d));
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
    render(&DashboardPage {
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
