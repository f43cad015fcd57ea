//! Task execution (ZJ-CONN-07, ZJ-TASK-04): every task apicode, run over HTTP, one at a
//! time in taskid order, each reported with `T_UPDATE_TASKS_STATUS`.
//!
//! | apicode | what the device does |
//! |---|---|
//! | T_SEND_PERSON | pages through the whole roster, downloads and checks every face, **replaces** its list |
//! | T_UPDATE_DEVICE_PERSON | the same for the persons of the task; **upserts** |
//! | T_DEL_DEVICE_PERSON | deletes the persons the interface lists |
//! | T_CLEAR_DEVICE_PERSON | deletes everyone |
//! | T_UPDATE_DEVICE_VERSION | downloads the firmware named by the **signed task param**, checks size and sha256, installs it (next heartbeats report the version) |
//! | T_POST_DEVICE_PERSON | uploads its own list, paged, leaving out the task's `excludeFields` |
//! | anything else | reports status 3 (unsupported) |
//!
//! Person tasks report `failedPersons` / `failedFaces` with the device errCodes below, and
//! every report carries `personCount` / `faceCount` as the store counts them afterwards.
//! Outcomes are written to the task log before they are reported, and reports the platform
//! did not acknowledge are sent again with the next one.
//!
//! Device errCodes (the standard leaves them to the device; ours, documented in the vendor
//! guide, defined in [`crate::codes`]): [`ERR_FACE_DOWNLOAD`], [`ERR_FACE_FORMAT`],
//! [`ERR_FACE_SIZE`], [`ERR_PERSON_INVALID`].

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use futures_util::StreamExt as _;
use rollcall_protocol::params::{
    self, DelPersonResponse, DevicePerson, FailedItem, FirmwareInfo, GetTasksParam,
    GetTasksResponse, PageParam, PersonEntry, PersonPage, PostDevicePersonParam,
    PostDevicePersonTaskParam, TaskOutcome, TaskStatus, UpdateTasksStatusParam,
};
use rollcall_protocol::time::now_ms;
use rollcall_protocol::{ApiCode, ErrorCode};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::DeviceConfig;
use crate::error::SdkError;
use crate::event::DeviceEvent;
use crate::http::DeviceHttp;
use crate::photo;
use crate::session::TaskOrder;
use crate::store::StoreHandle;
use crate::store::ops::{self, FaceUpdate, PersonRow};

pub use crate::codes::{ERR_FACE_DOWNLOAD, ERR_FACE_FORMAT, ERR_FACE_SIZE, ERR_PERSON_INVALID};

/// How often an idle runner resends status reports the platform has not acknowledged.
const REPORT_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// The meta key of the installed firmware version.
pub const META_FIRMWARE: &str = "firmware_version";

/// Messages to the runner.
#[derive(Debug)]
pub(crate) enum RunnerMsg {
    Run(TaskOrder),
    Fetch(Vec<String>),
}

/// What the runner tells the driver.
#[derive(Debug)]
pub(crate) enum RunnerNote {
    /// The task left the runner (done, failed, unsupported, or not found).
    Finished(String),
    /// A firmware was installed.
    Firmware(String),
}

/// What running a task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    pub outcome: TaskOutcome,
    pub failed_persons: Vec<FailedItem>,
    pub failed_faces: Vec<FailedItem>,
}

impl TaskReport {
    fn done() -> Self {
        TaskReport {
            outcome: TaskOutcome::Done,
            failed_persons: Vec::new(),
            failed_faces: Vec::new(),
        }
    }

    fn with(outcome: TaskOutcome) -> Self {
        TaskReport {
            outcome,
            ..TaskReport::done()
        }
    }
}

/// Runs tasks one at a time, in taskid order.
pub(crate) struct TaskRunner {
    pub http: Arc<DeviceHttp>,
    pub store: StoreHandle,
    pub cfg: Arc<DeviceConfig>,
    pub notes: mpsc::UnboundedSender<RunnerNote>,
    pub events: Option<mpsc::UnboundedSender<DeviceEvent>>,
}

/// Orders tasks by their numeric id (19 digits: text order is numeric order only at equal
/// length).
fn order_key(taskid: &str) -> (u64, String) {
    (taskid.parse().unwrap_or(u64::MAX), taskid.to_owned())
}

impl TaskRunner {
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<RunnerMsg>) {
        let mut queue: BTreeMap<(u64, String), (TaskOrder, u32)> = BTreeMap::new();
        let mut fetch: Vec<String> = Vec::new();
        self.report_unreported().await;
        loop {
            if queue.is_empty() && fetch.is_empty() {
                // Idle: wait for work, and now and then resend reports that did not get through.
                match tokio::time::timeout(REPORT_RETRY, rx.recv()).await {
                    Ok(Some(m)) => self.take(m, &mut queue, &mut fetch),
                    Ok(None) => return,
                    Err(_) => {
                        self.report_unreported().await;
                        continue;
                    }
                }
            }
            while let Ok(m) = rx.try_recv() {
                self.take(m, &mut queue, &mut fetch);
            }
            if !fetch.is_empty() {
                let ids = std::mem::take(&mut fetch);
                match self.get_tasks(&ids).await {
                    Ok(found) => {
                        for id in &ids {
                            if !found.iter().any(|t| &t.taskid == id) {
                                // Finished or cancelled meanwhile.
                                self.finished(id);
                            }
                        }
                        for t in found {
                            queue.insert(order_key(&t.taskid), (t, 0));
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(sn = %self.cfg.sn, error = %e, "T_GET_TASKS failed; retrying");
                        fetch = ids;
                        self.pause(1).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(sn = %self.cfg.sn, error = %e, "T_GET_TASKS refused");
                        ids.iter().for_each(|id| self.finished(id));
                    }
                }
            }
            let Some((_, (task, tries))) = queue.pop_first() else {
                continue;
            };
            match self.execute(&task).await {
                Ok(report) => {
                    self.conclude(&task, report).await;
                }
                Err(e) if e.code() == Some(ErrorCode::TaskNotFound) => {
                    tracing::info!(sn = %self.cfg.sn, taskid = %task.taskid, "task gone (cancelled or superseded)");
                    self.finished(&task.taskid);
                }
                Err(e) if e.is_retryable() && tries + 1 < self.cfg.tuning.task_attempts => {
                    tracing::warn!(sn = %self.cfg.sn, taskid = %task.taskid, error = %e, "task failed; will retry");
                    queue.insert(order_key(&task.taskid), (task, tries + 1));
                    self.pause(tries + 1).await;
                }
                Err(e) => {
                    tracing::warn!(sn = %self.cfg.sn, taskid = %task.taskid, error = %e, "task failed");
                    self.conclude(&task, TaskReport::with(TaskOutcome::Failed))
                        .await;
                }
            }
        }
    }

    fn take(
        &self,
        m: RunnerMsg,
        queue: &mut BTreeMap<(u64, String), (TaskOrder, u32)>,
        fetch: &mut Vec<String>,
    ) {
        match m {
            RunnerMsg::Run(t) => {
                queue.insert(order_key(&t.taskid), (t, 0));
            }
            RunnerMsg::Fetch(ids) => fetch.extend(ids),
        }
    }

    async fn pause(&self, attempt: u32) {
        let mut rng = crate::backoff::Rng::from_entropy();
        let d = self.cfg.tuning.retry.delay(attempt, &mut rng);
        tokio::time::sleep(d).await;
    }

    fn finished(&self, taskid: &str) {
        let _ = self.notes.send(RunnerNote::Finished(taskid.to_owned()));
    }

    async fn get_tasks(&self, ids: &[String]) -> Result<Vec<TaskOrder>, SdkError> {
        let param = params::to_json(&GetTasksParam {
            taskids: ids.to_vec(),
        });
        let text = self
            .http
            .call(ApiCode::GetTasks, None, Some(&param))
            .await?;
        let resp: GetTasksResponse = parse(ApiCode::GetTasks, text.as_deref())?;
        Ok(resp
            .tasks
            .into_iter()
            .map(|t| TaskOrder {
                taskid: t.taskid,
                apicode: t.apicode,
                param: t.param,
            })
            .collect())
    }

    /// Logs the outcome, reports it (with any earlier unreported ones), tells the driver.
    async fn conclude(&self, task: &TaskOrder, report: TaskReport) {
        let status = TaskStatus {
            taskid: task.taskid.clone(),
            status: report.outcome,
            failed_persons: report.failed_persons,
            failed_faces: report.failed_faces,
        };
        let text = serde_json::to_string(&status).unwrap_or_default();
        let (taskid, apicode, code) = (
            task.taskid.clone(),
            task.apicode.clone(),
            report.outcome.code(),
        );
        if let Err(e) = self
            .store
            .call(move |c| ops::log_task(c, &taskid, &apicode, code, &text, now_ms()))
            .await
        {
            tracing::error!(error = %e, "cannot log a task outcome");
        }
        self.report_unreported().await;
        tracing::info!(sn = %self.cfg.sn, taskid = %task.taskid, apicode = %task.apicode, outcome = %report.outcome, "task finished");
        if let Some(tx) = &self.events {
            let _ = tx.send(DeviceEvent::TaskFinished {
                taskid: task.taskid.clone(),
                apicode: task.apicode.clone(),
                outcome: report.outcome,
            });
        }
        self.finished(&task.taskid);
    }

    /// Sends every logged, unreported status in one T_UPDATE_TASKS_STATUS.
    async fn report_unreported(&self) {
        let pending = match self.store.call(ops::unreported).await {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the task log");
                return;
            }
        };
        let (ids, task): (Vec<String>, Vec<TaskStatus>) = pending
            .into_iter()
            .filter_map(|(id, text)| serde_json::from_str(&text).ok().map(|s| (id, s)))
            .unzip();
        let (person_count, face_count) = match self.store.call(ops::counts).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot count persons");
                return;
            }
        };
        let param = params::to_json(&UpdateTasksStatusParam {
            task,
            person_count,
            face_count,
        });
        match self
            .http
            .call(ApiCode::UpdateTasksStatus, None, Some(&param))
            .await
        {
            Ok(_) => {
                if let Err(e) = self.store.call(move |c| ops::mark_reported(c, &ids)).await {
                    tracing::error!(error = %e, "cannot mark tasks reported");
                }
            }
            Err(e) => {
                tracing::warn!(sn = %self.cfg.sn, error = %e, "status report failed; sent again with the next one");
            }
        }
    }

    /// Runs one task; `Err` when it could not run to the end (the caller retries or fails it).
    pub async fn execute(&self, task: &TaskOrder) -> Result<TaskReport, SdkError> {
        let Ok(api) = task.apicode.parse::<ApiCode>() else {
            return Ok(TaskReport::with(TaskOutcome::Unsupported));
        };
        match api {
            ApiCode::SendPerson => self.persons(api, task, true).await,
            ApiCode::UpdateDevicePerson => self.persons(api, task, false).await,
            ApiCode::DelDevicePerson => {
                let text = self.http.call(api, Some(&task.taskid), None).await?;
                let del: DelPersonResponse = parse(api, text.as_deref())?;
                let ids = del.person_ids;
                self.store
                    .call(move |c| ops::delete_persons(c, &ids))
                    .await?;
                Ok(TaskReport::done())
            }
            ApiCode::ClearDevicePerson => {
                self.http.call(api, Some(&task.taskid), None).await?;
                self.store.call(ops::clear_persons).await?;
                Ok(TaskReport::done())
            }
            ApiCode::UpdateDeviceVersion => self.firmware(task).await,
            ApiCode::PostDevicePerson => self.post_persons(task).await,
            _ => Ok(TaskReport::with(TaskOutcome::Unsupported)),
        }
    }

    /// T_SEND_PERSON (`replace`) and T_UPDATE_DEVICE_PERSON: page through, download and
    /// check faces, store each page as it comes.
    async fn persons(
        &self,
        api: ApiCode,
        task: &TaskOrder,
        replace: bool,
    ) -> Result<TaskReport, SdkError> {
        let mut report = TaskReport::done();
        let mut page_no = 1;
        loop {
            let param = params::to_json(&PageParam {
                current_page: page_no,
                size: Some(self.cfg.tuning.page_size),
                total_page: None,
            });
            let text = self
                .http
                .call(api, Some(&task.taskid), Some(&param))
                .await?;
            let page: PersonPage = parse(api, text.as_deref())?;
            let last = page.is_last() || page.total_page == 0;
            let rows = self.page_rows(page.data, &mut report).await;
            let tag = replace.then(|| task.taskid.clone());
            if !rows.is_empty() {
                self.store
                    .call(move |c| ops::upsert_persons(c, &rows, tag.as_deref(), now_ms()))
                    .await?;
            }
            if last {
                break;
            }
            page_no += 1;
        }
        if replace {
            let tag = task.taskid.clone();
            self.store
                .call(move |c| ops::retain_tagged(c, &tag))
                .await?;
        }
        Ok(report)
    }

    /// Downloads and checks the faces of one page, a few at a time.
    async fn page_rows(&self, data: Vec<PersonEntry>, report: &mut TaskReport) -> Vec<PersonRow> {
        let max = self.cfg.tuning.max_photo_bytes;
        let results: Vec<(PersonEntry, Result<Option<FaceUpdate>, &'static str>)> =
            futures_util::stream::iter(data.into_iter().map(|entry| async move {
                let face = match entry.img_urls.first() {
                    None => Ok(Some(FaceUpdate::Remove)),
                    Some(url) => match self.http.download(url, max as u64).await {
                        Ok(bytes) => match photo::check(&bytes, max) {
                            Ok(format) => Ok(Some(FaceUpdate::Set {
                                format,
                                photo: bytes,
                            })),
                            Err(e) => Err(e.err_code()),
                        },
                        Err(SdkError::Photo(e)) => Err(e.err_code()),
                        Err(_) => Err(ERR_FACE_DOWNLOAD),
                    },
                };
                (entry, face)
            }))
            .buffered(self.cfg.tuning.download_concurrency.max(1))
            .collect()
            .await;
        let mut rows = Vec::with_capacity(results.len());
        for (entry, face) in results {
            if entry.person_id.trim().is_empty() {
                report.failed_persons.push(FailedItem {
                    person_id: entry.person_id,
                    err_code: ERR_PERSON_INVALID.into(),
                });
                continue;
            }
            let face = match face {
                Ok(Some(f)) => f,
                Ok(None) => FaceUpdate::Keep,
                Err(code) => {
                    report.failed_faces.push(FailedItem {
                        person_id: entry.person_id.clone(),
                        err_code: code.into(),
                    });
                    FaceUpdate::Keep
                }
            };
            rows.push(PersonRow {
                person_id: entry.person_id,
                name: entry.name,
                face,
            });
        }
        rows
    }

    /// T_UPDATE_DEVICE_VERSION: URL and sha256 come from the signed task param, and the
    /// download must match them (ZJ-SIGN-14, ZJ-FW-03).
    async fn firmware(&self, task: &TaskOrder) -> Result<TaskReport, SdkError> {
        let api = ApiCode::UpdateDeviceVersion;
        // The interface call confirms the task is still ours (405_01 otherwise).
        self.http.call(api, Some(&task.taskid), None).await?;
        let info: FirmwareInfo = parse(api, Some(&task.param))?;
        if info.size > self.cfg.tuning.max_firmware_bytes {
            return Ok(TaskReport::with(TaskOutcome::Failed));
        }
        let bytes = self
            .http
            .download(&info.download_url, info.size.max(1))
            .await?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if !info.matches(bytes.len() as u64, &digest) {
            return Err(SdkError::Firmware(format!(
                "version {}: {} bytes with sha256 {}, expected {} bytes with {}",
                info.version,
                bytes.len(),
                hex::encode(digest),
                info.size,
                info.sha256
            )));
        }
        let dir = self.cfg.data_dir.join("firmware");
        let name: String = info
            .version
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.bin"));
        write_durably(&dir, &path, bytes)
            .await
            .map_err(|e| SdkError::Firmware(format!("writing {}: {e}", path.display())))?;
        let version = info.version.clone();
        self.store
            .call(move |c| ops::set_meta(c, META_FIRMWARE, &version))
            .await?;
        let _ = self.notes.send(RunnerNote::Firmware(info.version));
        Ok(TaskReport::done())
    }

    /// T_POST_DEVICE_PERSON: the device's own list, paged, without the excluded members
    /// (ZJ-RECON-03).
    async fn post_persons(&self, task: &TaskOrder) -> Result<TaskReport, SdkError> {
        let api = ApiCode::PostDevicePerson;
        let p: PostDevicePersonTaskParam = if task.param.trim().is_empty() {
            PostDevicePersonTaskParam::default()
        } else {
            parse(api, Some(&task.param))?
        };
        let size = self.cfg.tuning.post_page_size.max(1);
        let (count, _) = self.store.call(ops::counts).await?;
        let total_page = (count as usize).div_ceil(size).max(1) as u32;
        let with_img = !p.excludes("img");
        let mut after: Option<String> = None;
        for page in 1..=total_page {
            let from = after.clone();
            let persons = self
                .store
                .call(move |c| ops::persons_page(c, from.as_deref(), size, with_img))
                .await?;
            after = persons.last().map(|x| x.person_id.clone());
            let data = persons
                .into_iter()
                .map(|x| DevicePerson {
                    name: (!p.excludes("name")).then_some(x.name),
                    img: x
                        .face
                        .as_ref()
                        .and_then(|f| f.photo.as_ref())
                        .filter(|_| with_img)
                        .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
                    has_img: (!p.excludes("hasImg")).then_some(x.face.is_some()),
                    phone: x.phone.filter(|_| !p.excludes("phone")),
                    idcard_no: x.idcard_no.filter(|_| !p.excludes("idcardNo")),
                    person_id: x.person_id,
                })
                .collect();
            let param = params::to_json(&PostDevicePersonParam {
                current_page: page,
                total_page,
                data,
            });
            self.http
                .call(api, Some(&task.taskid), Some(&param))
                .await?;
        }
        Ok(TaskReport::done())
    }
}

fn parse<T: serde::de::DeserializeOwned>(api: ApiCode, text: Option<&str>) -> Result<T, SdkError> {
    params::parse(text.unwrap_or("{}")).map_err(|e| SdkError::BadResponse {
        api,
        detail: e.to_string(),
    })
}

/// Writes `bytes` to `path` through a temporary file, fsynced, then renamed.
async fn write_durably(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: Vec<u8>,
) -> std::io::Result<()> {
    let (dir, path) = (dir.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::create_dir_all(&dir)?;
        let tmp = path.with_extension("part");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}
