//! The sender loop: every `poll_ms`, for each project whose uplink is enabled and whose
//! lease this node takes, one or more **steps** over its outbox:
//!
//! 1. Items `sending` — a request whose answer was never recorded (this node or another
//!    crashed, or the answer timed out) — are **in doubt**. Once the request is surely over
//!    (`request_timeout_ms` after it was sent), each item is looked up with the kind's
//!    `*.Query`: found means accepted, not found means it is sent again. Nothing is resent
//!    blindly, except a `ProjectWorker.Update`: a query finds the worker whether or not the
//!    update was applied, and the same update twice changes nothing.
//! 2. Items `sent` await their async result: `AsyncHandleResult.Query` per
//!    `requestSerialCode` — `"20"` accepted, `"10"` refused (a refused batch of several is
//!    split and each item sent alone, so one bad worker does not sink 49 good ones), `"0"`
//!    wait.
//! 3. Otherwise the oldest due items are sent: consecutive items of one request kind and
//!    team, up to `batch_max`, marked `sending` in a committed transaction **before** the
//!    request leaves.
//!
//! While anything is in flight nothing new is sent, so the platform sees the project's
//! items in queue order (team → worker → entry → attendance, as they were stored). A
//! request-level failure (no connection, HTTP 503, `code != 0` without a field name) backs
//! the whole project off exponentially; a field-level refusal ends the item with the
//! platform's message.
//!
//! One sender per project across nodes: a lease row (compare-and-set on
//! `uplink_configs.lease_owner/lease_until`) renewed every round and before every request
//! that sends or looks up items; a node that finds it lost the lease stops at once.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::client::{CallError, Client, Target};
use super::codec::{self, AsyncStatus};
use super::items::{self, Prepared, Resolved};
use crate::runtime::util::{now_ms, random_hex128};
use crate::state::{App, AppState};
use crate::store::{StoreResult, UplinkConfig, UplinkItem, UplinkOutcome, UplinkState};

/// Steps per project per round at most (a backlog drains over rounds, fairly).
const MAX_STEPS_PER_ROUND: usize = 20;
/// Queue gauges and the late alert are refreshed every this many rounds.
const OBSERVE_EVERY_ROUNDS: u64 = 5;

/// What a step did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Something moved; another step may do more now.
    More,
    /// Nothing to do until later.
    Idle,
}

/// Runs until `stop`. A request in flight when `stop` comes is abandoned: its items stay
/// `sending` and are resolved by query after the restart.
pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let settings = app.settings.uplink.clone();
    if !settings.enabled {
        return;
    }
    let client = match Client::new(Duration::from_millis(settings.request_timeout_ms.max(1))) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the uplink's HTTP client cannot start; nothing is reported");
            return;
        }
    };
    let owner = random_hex128();
    let mut tick = tokio::time::interval(Duration::from_millis(settings.poll_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut late: HashSet<i64> = HashSet::new();
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let work = async {
            let configs = match app.store.enabled_uplinks().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "reading uplink settings failed; will retry");
                    return;
                }
            };
            let mut held = HashSet::new();
            for config in configs {
                let now = now_ms();
                let until = now.saturating_add(settings.lease_ms as i64);
                match app
                    .store
                    .take_uplink_lease(config.project_id, &owner, now, until)
                    .await
                {
                    Ok(true) => {
                        held.insert(config.project_id);
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(project = config.project_id, error = %e, "uplink lease failed");
                        continue;
                    }
                }
                let sender = Sender {
                    app: &app,
                    client: &client,
                    config: &config,
                    owner: &owner,
                };
                for _ in 0..MAX_STEPS_PER_ROUND {
                    match sender.step().await {
                        Ok(Step::More) => {}
                        Ok(Step::Idle) => break,
                        Err(e) => {
                            tracing::warn!(project = config.project_id, error = %e, "uplink step failed; will retry");
                            break;
                        }
                    }
                }
            }
            if round.is_multiple_of(OBSERVE_EVERY_ROUNDS) {
                observe(&app, &held, &mut late).await;
            }
        };
        tokio::select! {
            () = work => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        round += 1;
    }
}

/// The start and end of the Beijing day holding `now` (epoch ms).
pub fn beijing_day(now: i64) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    const OFFSET: i64 = 8 * 3_600_000;
    let start = (now + OFFSET).div_euclid(DAY) * DAY - OFFSET;
    (start, start + DAY)
}

/// Queue gauges per project (on every node), and the late alert (on the node holding the
/// project's lease this round, so a cluster says it once): one WARN line when the oldest
/// pending item gets older than `alert_after_ms`, one INFO line when it is back under. A
/// project that stays late is not logged again; the gauges show it the whole time.
async fn observe(app: &App, held: &HashSet<i64>, late: &mut HashSet<i64>) {
    let Ok(configs) = app.store.enabled_uplinks().await else {
        return;
    };
    let now = now_ms();
    let limit_ms = i64::try_from(app.settings.uplink.alert_after_ms).unwrap_or(i64::MAX);
    for config in configs {
        let Ok(stats) = app
            .store
            .uplink_stats(config.project_id, beijing_day(now))
            .await
        else {
            continue;
        };
        let age_ms = stats
            .oldest_pending_at
            .map_or(0, |at| now.saturating_sub(at));
        app.metrics
            .uplink_queue(config.project_id, stats.pending, age_ms as f64 / 1000.0);
        if !held.contains(&config.project_id) {
            // Another node sends (and alerts) for it; if this node alerted before the lease
            // moved, the new holder says it again when it sees it.
            late.remove(&config.project_id);
            continue;
        }
        let is_late = stats.pending > 0 && age_ms > limit_ms;
        if is_late == late.contains(&config.project_id) {
            continue;
        }
        let name = match app.store.project(config.project_id).await {
            Ok(Some(p)) => p.name,
            _ => String::new(),
        };
        if is_late {
            late.insert(config.project_id);
            tracing::warn!(
                project = config.project_id,
                project_name = %name,
                pending = stats.pending,
                oldest_pending_ms = age_ms,
                alert_after_ms = limit_ms,
                last_error = config.last_error.as_deref().unwrap_or(""),
                "uplink alert: project {} ({name}) is late: its oldest pending record has waited \
                 {} for the national platform (alert after {})",
                config.project_id,
                duration_text(age_ms),
                duration_text(limit_ms),
            );
        } else {
            late.remove(&config.project_id);
            tracing::info!(
                project = config.project_id,
                project_name = %name,
                pending = stats.pending,
                oldest_pending_ms = age_ms,
                "uplink alert over: project {} ({name}) is no longer late",
                config.project_id,
            );
        }
    }
}

/// `1h 05m 03s`, `12.345s`: an age a person reads in a log line.
fn duration_text(ms: i64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        return format!("{}.{:03}s", secs, ms % 1000);
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

struct Sender<'a> {
    app: &'a App,
    client: &'a Client,
    config: &'a UplinkConfig,
    /// This node's lease owner id.
    owner: &'a str,
}

impl Sender<'_> {
    fn target(&self) -> Target<'_> {
        Target {
            endpoint: &self.config.endpoint,
            appid: &self.config.appid,
            appsecret: &self.config.appsecret,
        }
    }

    /// Renews the project's lease before a request; `false` when another node holds it now
    /// (this one was too slow), and then this node sends nothing more for the project.
    async fn still_holds_lease(&self) -> StoreResult<bool> {
        let now = now_ms();
        let until = now.saturating_add(self.app.settings.uplink.lease_ms as i64);
        self.app
            .store
            .take_uplink_lease(self.config.project_id, self.owner, now, until)
            .await
    }

    async fn call(&self, method: &str, data: &Value) -> Result<Value, CallError> {
        let result = self
            .client
            .call(&self.target(), method, data, &random_hex128(), now_ms())
            .await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        self.app.metrics.uplink_request(method, label);
        result
    }

    /// Counts a request-level failure: the project waits, doubling per failure.
    async fn back_off(&self, message: String) -> StoreResult<()> {
        let s = &self.app.settings.uplink;
        let failures = self.config.failures.min(20);
        let wait = s
            .backoff_ms
            .saturating_mul(1u64 << failures)
            .min(s.backoff_max_ms);
        tracing::warn!(project = self.config.project_id, error = %message, wait_ms = wait, "uplink request failed; backing off");
        self.app
            .store
            .record_uplink_attempt(
                self.config.project_id,
                Err((message, now_ms().saturating_add(wait as i64))),
            )
            .await
    }

    async fn succeeded(&self) -> StoreResult<()> {
        self.app
            .store
            .record_uplink_attempt(self.config.project_id, Ok(now_ms()))
            .await
    }

    async fn step(&self) -> StoreResult<Step> {
        let now = now_ms();
        let fresh = self
            .app
            .store
            .uplink_config(self.config.project_id)
            .await?
            .filter(|c| c.enabled);
        let Some(fresh) = fresh else {
            return Ok(Step::Idle);
        };
        if fresh.retry_at > now {
            return Ok(Step::Idle);
        }
        let in_flight = self
            .app
            .store
            .uplink_in_flight(self.config.project_id)
            .await?;
        if !in_flight.is_empty() {
            let (sending, sent): (Vec<_>, Vec<_>) = in_flight
                .into_iter()
                .partition(|i| i.state == UplinkState::Sending);
            if !sending.is_empty() {
                return self.resolve_in_doubt(sending).await;
            }
            return self.poll(sent).await;
        }
        self.send_next().await
    }

    /// Items of a request whose answer was never recorded: asked for, one by one.
    async fn resolve_in_doubt(&self, items: Vec<UplinkItem>) -> StoreResult<Step> {
        let settle = self.app.settings.uplink.request_timeout_ms as i64;
        let newest = items.iter().filter_map(|i| i.sent_at).max().unwrap_or(0);
        if now_ms() < newest.saturating_add(settle) {
            // Possibly still in flight (from another node whose lease lapsed).
            return Ok(Step::Idle);
        }
        for item in items {
            if !self.still_holds_lease().await? {
                return Ok(Step::Idle);
            }
            let prepared = match items::resolve(self.app, self.config, &item).await? {
                Resolved::Send(p) => p,
                Resolved::Wait(message) => {
                    self.settle(&[item.id], retry_later(self.app, message), None)
                        .await?;
                    continue;
                }
                Resolved::Refuse(message) => {
                    self.settle(&[item.id], UplinkOutcome::Refused(message), None)
                        .await?;
                    continue;
                }
            };
            let Some((method, filter)) = &prepared.query else {
                tracing::info!(
                    project = self.config.project_id,
                    item = item.id,
                    "uplink: an update in doubt is sent again (the same data twice changes nothing)"
                );
                self.settle(
                    &[item.id],
                    UplinkOutcome::Retry {
                        next_at: 0,
                        solo: false,
                        message: Some("请求结果未知，更新重发".to_owned()),
                    },
                    None,
                )
                .await?;
                continue;
            };
            let data = items::query_data(self.config, filter);
            match self.call(method, &data).await {
                Ok(answer) => {
                    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
                    if let Some(row) = rows.first() {
                        tracing::info!(
                            project = self.config.project_id,
                            item = item.id,
                            "uplink: an item in doubt was found on the national platform"
                        );
                        let team = prepared.team_id.zip(codec::team_sys_no(row));
                        self.settle(&[item.id], UplinkOutcome::Accepted, team)
                            .await?;
                    } else {
                        tracing::info!(
                            project = self.config.project_id,
                            item = item.id,
                            "uplink: an item in doubt is not on the national platform; sending it again"
                        );
                        self.settle(
                            &[item.id],
                            UplinkOutcome::Retry {
                                next_at: 0,
                                solo: false,
                                message: Some("请求结果未知，查询后重发".to_owned()),
                            },
                            None,
                        )
                        .await?;
                    }
                }
                Err(e) => {
                    self.back_off(e.to_string()).await?;
                    return Ok(Step::Idle);
                }
            }
        }
        self.succeeded().await?;
        Ok(Step::More)
    }

    /// Asks for the async results of the requests awaiting one.
    async fn poll(&self, sent: Vec<UplinkItem>) -> StoreResult<Step> {
        let mut by_serial: BTreeMap<String, Vec<UplinkItem>> = BTreeMap::new();
        for item in sent {
            by_serial
                .entry(item.serial.clone().unwrap_or_default())
                .or_default()
                .push(item);
        }
        let mut moved = false;
        for (serial, items) in by_serial {
            let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
            let answer = self
                .call(
                    "AsyncHandleResult.Query",
                    &json!({"requestSerialCode": serial}),
                )
                .await;
            let data = match answer {
                Ok(d) => d,
                Err(CallError::Refused(r)) if r.message.starts_with('[') => {
                    // The platform does not know the job (`[requestSerialCode]…`): whether
                    // the items were taken is looked up, never assumed.
                    tracing::warn!(project = self.config.project_id, message = %r.message, "uplink: an async job is unknown to the national platform; looking its items up");
                    self.settle(&ids, UplinkOutcome::InDoubt, None).await?;
                    moved = true;
                    continue;
                }
                Err(e) => {
                    self.back_off(e.to_string()).await?;
                    return Ok(Step::Idle);
                }
            };
            match codec::async_status(&data) {
                Ok(AsyncStatus::Pending) => {}
                Ok(AsyncStatus::Succeeded(result)) => {
                    let team = match items.first() {
                        Some(first) if first.kind == crate::store::UplinkKind::Team => {
                            self.team_sys_no_of(first, &result).await?
                        }
                        _ => None,
                    };
                    self.settle(&ids, UplinkOutcome::Accepted, team).await?;
                    moved = true;
                }
                Ok(AsyncStatus::Failed(message)) => {
                    self.refused(&items, message).await?;
                    moved = true;
                }
                Err(e) => {
                    self.back_off(e.to_string()).await?;
                    return Ok(Step::Idle);
                }
            }
        }
        self.succeeded().await?;
        Ok(if moved { Step::More } else { Step::Idle })
    }

    /// The `teamSysNo` a team got: from the async result, else by `Team.Query`.
    async fn team_sys_no_of(
        &self,
        item: &UplinkItem,
        result: &Value,
    ) -> StoreResult<Option<(i64, i64)>> {
        if let Some(n) = codec::team_sys_no(result) {
            return Ok(Some((item.ref_id, n)));
        }
        let Some(team) = self.app.store.team(item.ref_id).await? else {
            return Ok(None);
        };
        let data = items::query_data(self.config, &json!({"teamName": team.name}));
        Ok(self
            .call("Team.Query", &data)
            .await
            .ok()
            .and_then(|answer| answer["rows"].get(0).and_then(codec::team_sys_no))
            .map(|n| (item.ref_id, n)))
    }

    /// A refusal of a request carrying `items`: several are split and sent alone; one
    /// ends refused with the platform's message.
    async fn refused(&self, items: &[UplinkItem], message: String) -> StoreResult<()> {
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let outcome = if items.len() > 1 {
            UplinkOutcome::Retry {
                next_at: 0,
                solo: true,
                message: Some(message),
            }
        } else {
            UplinkOutcome::Refused(message)
        };
        self.settle(&ids, outcome, None).await
    }

    async fn settle(
        &self,
        ids: &[i64],
        outcome: UplinkOutcome,
        team: Option<(i64, i64)>,
    ) -> StoreResult<()> {
        self.app
            .store
            .uplink_settle(ids, &outcome, now_ms(), team)
            .await
    }

    /// Sends the oldest due items that share a request.
    async fn send_next(&self) -> StoreResult<Step> {
        let batch_max = self.app.settings.uplink.batch_max.clamp(1, 50) as usize;
        let due = self
            .app
            .store
            .uplink_due(self.config.project_id, now_ms(), batch_max as u32 * 2)
            .await?;
        if due.is_empty() {
            return Ok(Step::Idle);
        }
        let mut batch: Vec<(UplinkItem, Box<Prepared>)> = Vec::new();
        let mut settled_locally = false;
        for item in due {
            if let Some((first, p)) = batch.first() {
                // One request: the same method and team, nobody sent alone, not full.
                if batch.len() >= batch_max || first.solo || item.solo || p.group.single {
                    break;
                }
            }
            match items::resolve(self.app, self.config, &item).await? {
                Resolved::Send(prepared) => {
                    if let Some((_, first)) = batch.first()
                        && first.group != prepared.group
                    {
                        break;
                    }
                    batch.push((item, prepared));
                }
                Resolved::Wait(message) => {
                    if batch.is_empty() {
                        self.settle(&[item.id], retry_later(self.app, message), None)
                            .await?;
                        settled_locally = true;
                    } else {
                        break;
                    }
                }
                Resolved::Refuse(message) => {
                    if batch.is_empty() {
                        self.settle(&[item.id], UplinkOutcome::Refused(message), None)
                            .await?;
                        settled_locally = true;
                    } else {
                        break;
                    }
                }
            }
        }
        let Some((_, first)) = batch.first() else {
            return Ok(if settled_locally {
                Step::More
            } else {
                Step::Idle
            });
        };
        let group = first.group.clone();
        let ids: Vec<i64> = batch.iter().map(|(i, _)| i.id).collect();
        let team_id = first.team_id;
        let entries: Vec<Value> = batch.iter().map(|(_, p)| p.entry.clone()).collect();
        let data = items::request_data(self.config, &group, entries);
        if !self.still_holds_lease().await? {
            return Ok(Step::Idle);
        }
        let request = random_hex128();
        // Committed before the request leaves: a crash from here on leaves them in doubt.
        self.app
            .store
            .uplink_mark_sending(&ids, &request, now_ms())
            .await?;
        match self.call(group.method, &data).await {
            Ok(answer) => {
                match answer["requestSerialCode"].as_str() {
                    Some(serial) => {
                        self.app
                            .store
                            .uplink_mark_sent(&ids, &request, serial)
                            .await?;
                    }
                    None => {
                        // Handled at once (no async job).
                        let team = team_id.zip(codec::team_sys_no(&answer));
                        self.settle(&ids, UplinkOutcome::Accepted, team).await?;
                    }
                }
                self.succeeded().await?;
                Ok(Step::More)
            }
            Err(CallError::Refused(r)) if r.message.starts_with('[') => {
                // A field of an item: the request was read and answered.
                let items: Vec<UplinkItem> = batch.into_iter().map(|(i, _)| i).collect();
                self.refused(&items, r.message).await?;
                self.succeeded().await?;
                Ok(Step::More)
            }
            Err(CallError::InDoubt(message)) => {
                // Left `sending`: resolved by query once the request is surely over.
                self.back_off(message).await?;
                Ok(Step::Idle)
            }
            Err(e) => {
                let message = e.to_string();
                self.settle(
                    &ids,
                    UplinkOutcome::Retry {
                        next_at: 0,
                        solo: false,
                        message: Some(message.clone()),
                    },
                    None,
                )
                .await?;
                self.back_off(message).await?;
                Ok(Step::Idle)
            }
        }
    }
}

/// An item waiting for data: looked at again after `blocked_retry_ms` (or at once when the
/// worker's data changes).
fn retry_later(app: &App, message: String) -> UplinkOutcome {
    UplinkOutcome::Retry {
        next_at: now_ms().saturating_add(app.settings.uplink.blocked_retry_ms as i64),
        solo: false,
        message: Some(message),
    }
}
