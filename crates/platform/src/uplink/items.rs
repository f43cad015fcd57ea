//! What each outbox item becomes on the wire (UPLINK.md "Methods and order"): the entry it
//! adds to a request, the request it can share (same method, same `teamSysNo`), and the
//! query that finds it on the platform when a request's fate is in doubt.
//!
//! An item that cannot be sent yet **waits** with a reason shown in the console (no team,
//! its team not yet accepted, no face photo); one that can never be sent is **refused**
//! here with the reason (an unknown person, a record that is gone). Either way it stops
//! holding up the items behind it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::codec;
use super::dictionaries;
use super::photo;
use crate::state::App;
use crate::store::{Direction, StoreResult, UplinkConfig, UplinkItem, UplinkKind};

/// `idCardType` of a resident ID card.
const RESIDENT_ID: &str = "01";
/// `workRole` of a worker (`10` is a manager).
const WORK_ROLE_WORKER: &str = "20";
/// `workType` when the worker's trade is not a 3-digit national code (the official list is
/// not public; see docs/UPLINK.md).
pub const DEFAULT_WORK_TYPE: &str = "900";
/// `politicsType` when none is known: 群众 (GB/T 4762 code 13).
pub const DEFAULT_POLITICS_TYPE: &str = "13";

/// The request an item can share with its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub method: &'static str,
    /// The team's `teamSysNo` and name (none for `Team.Add`).
    pub team: Option<(i64, String)>,
    /// Only one per request (`Team.Add` takes one team).
    pub single: bool,
}

/// An item ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub group: Group,
    /// The list element (or, for a team, the whole data).
    pub entry: Value,
    /// `(method, filter)` that finds it on the platform; none for an update, which is
    /// sent again when in doubt (sending the same data twice changes nothing, and a
    /// query would find the worker whether or not the update was applied).
    pub query: Option<(&'static str, Value)>,
    /// For a team: its id (to record the `teamSysNo` it gets).
    pub team_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum Resolved {
    Send(Box<Prepared>),
    /// Not sendable yet; looked at again later.
    Wait(String),
    /// Never sendable.
    Refuse(String),
}

/// The business JSON of a request carrying `entries` of one group.
pub fn request_data(config: &UplinkConfig, group: &Group, entries: Vec<Value>) -> Value {
    let (sys_no, team_name) = group
        .team
        .clone()
        .map_or((Value::Null, Value::Null), |(n, name)| {
            (json!(n), json!(name))
        });
    match group.method {
        "ProjectWorker.Add" | "ProjectWorker.Update" => json!({
            "projectCode": config.appid, "corpCode": config.corp_code,
            "corpName": config.corp_name, "teamSysNo": sys_no, "teamName": team_name,
            "workerList": entries,
        }),
        "WorkerEntryExit.Add" => json!({
            "projectCode": config.appid, "corpCode": config.corp_code,
            "corpName": config.corp_name, "teamSysNo": sys_no, "workerList": entries,
        }),
        "WorkerAttendance.Add" => json!({
            "projectCode": config.appid, "teamSysNo": sys_no, "dataList": entries,
        }),
        // Team.Add: the entry is the whole data.
        _ => entries.into_iter().next().unwrap_or(Value::Null),
    }
}

/// The query's data: the filter plus the project and the first page.
pub fn query_data(config: &UplinkConfig, filter: &Value) -> Value {
    let mut data = json!({"projectCode": config.appid, "pageIndex": 0, "pageSize": 50});
    if let (Some(map), Some(extra)) = (data.as_object_mut(), filter.as_object()) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    data
}

pub async fn resolve(app: &App, config: &UplinkConfig, item: &UplinkItem) -> StoreResult<Resolved> {
    if item.kind == UplinkKind::Team {
        let Some(team) = app.store.team(item.ref_id).await? else {
            return Ok(Resolved::Refuse(format!("班组 {} 不存在", item.ref_id)));
        };
        let mut entry = json!({
            "projectCode": config.appid, "corpCode": config.corp_code,
            "corpName": config.corp_name, "teamName": team.name,
        });
        if let (Some(leader), Some(map)) = (&team.leader, entry.as_object_mut()) {
            map.insert("teamLeaderName".into(), json!(leader));
        }
        return Ok(Resolved::Send(Box::new(Prepared {
            group: Group {
                method: "Team.Add",
                team: None,
                single: true,
            },
            entry,
            query: Some(("Team.Query", json!({"teamName": team.name}))),
            team_id: Some(team.id),
        })));
    }

    let person = item
        .person_id
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok());
    let Some(person) = person else {
        return Ok(Resolved::Refuse(
            "记录的人员编号不是平台登记的工人".to_owned(),
        ));
    };
    // The national data before the worker: an edit writes both in one transaction, so a
    // sender that sees the new national data reads the new worker too.
    let national = match item.kind {
        UplinkKind::Worker | UplinkKind::WorkerUpdate => app.store.worker_national(person).await?,
        _ => None,
    };
    let Some(worker) = app.store.worker(person).await? else {
        return Ok(Resolved::Refuse(format!(
            "人员 {person} 未在平台登记，无法上报"
        )));
    };
    let membership = app
        .store
        .memberships(person)
        .await?
        .into_iter()
        .find(|m| m.project_id == item.project_id);
    let Some(member) = membership else {
        return Ok(Resolved::Refuse("该工人不是本项目的成员".to_owned()));
    };
    let Some(team_id) = member.team_id else {
        return Ok(Resolved::Wait(
            "工人未分配班组（国家平台要求 teamSysNo）".to_owned(),
        ));
    };
    let Some(sys_no) = app.store.uplink_team_sys_no(team_id).await? else {
        return Ok(Resolved::Wait("工人所在班组尚未被国家平台接受".to_owned()));
    };
    let team_name = app
        .store
        .team(team_id)
        .await?
        .map(|t| (t.name, t.leader))
        .unwrap_or_default();
    let id_number = match codec::encrypt_id(&config.appsecret, &worker.idcard_no) {
        Ok(id) => id,
        Err(e) => return Ok(Resolved::Wait(format!("上报密钥不可用：{e}"))),
    };
    let team = Some((sys_no, team_name.0.clone()));
    // The platform refuses an entry or an update of a worker it does not know, and
    // attendance of a worker not entered: wait for those first.
    let needs = match item.kind {
        UplinkKind::Entry | UplinkKind::Exit | UplinkKind::WorkerUpdate => {
            Some((UplinkKind::Worker, "工人信息尚未被国家平台接受"))
        }
        UplinkKind::Attendance => Some((UplinkKind::Entry, "工人进场尚未被国家平台接受")),
        _ => None,
    };
    if let Some((kind, reason)) = needs {
        let before = app.store.uplink_items_of(kind, person).await?;
        let accepted = before.iter().any(|i| {
            i.project_id == item.project_id && i.state == crate::store::UplinkState::Accepted
        });
        if !accepted {
            return Ok(Resolved::Wait(reason.to_owned()));
        }
    }

    let prepared = match item.kind {
        UplinkKind::Worker | UplinkKind::WorkerUpdate => {
            let today = rollcall_protocol::time::today_beijing(crate::runtime::util::now_ms());
            let problems =
                dictionaries::problems(national.as_ref(), worker.face_key.is_some(), today);
            let (Some(face_key), true) = (&worker.face_key, problems.is_empty()) else {
                return Ok(Resolved::Wait(problems.join("；")));
            };
            let national = national.unwrap_or_default();
            let bytes = match app.blobs.get(face_key).await {
                Ok(b) => b,
                Err(e) => return Ok(Resolved::Wait(format!("人脸照片读取失败：{e}"))),
            };
            let encoded = tokio::task::spawn_blocking(move || photo::head_image(&bytes)).await;
            let head = match encoded {
                Ok(Ok(jpeg)) => STANDARD.encode(jpeg),
                Ok(Err(e)) => return Ok(Resolved::Refuse(format!("人脸照片无法上报：{e}"))),
                Err(e) => return Ok(Resolved::Wait(format!("人脸照片处理失败：{e}"))),
            };
            let work_type = national
                .work_type
                .as_deref()
                .or(member.trade.as_deref())
                .filter(|t| t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or(DEFAULT_WORK_TYPE);
            let is_leader =
                national.team_leader || team_name.1.as_deref() == Some(worker.name.as_str());
            let mut entry = json!({
                "workerName": worker.name,
                "isTeamLeader": i32::from(is_leader),
                "idCardType": RESIDENT_ID,
                "idCardNumber": id_number,
                "workType": work_type,
                "workRole": WORK_ROLE_WORKER,
                "nation": worker.nation.clone().unwrap_or_default(),
                "address": worker.address.clone().unwrap_or_default(),
                "headImage": head,
                "politicsType": national.politics_type.as_deref().unwrap_or(DEFAULT_POLITICS_TYPE),
                "cellPhone": worker.phone.clone().unwrap_or_default(),
                "grantOrg": national.grant_org.clone().unwrap_or_default(),
            });
            if let Some(map) = entry.as_object_mut() {
                // The ID card's validity, when known.
                for (key, value) in [
                    ("startDate", &national.id_valid_from),
                    ("expiryDate", &national.id_valid_to),
                ] {
                    if let Some(v) = value {
                        map.insert(key.to_owned(), json!(v));
                    }
                }
            }
            let (method, query) = if item.kind == UplinkKind::Worker {
                let filter = json!({"idCardType": RESIDENT_ID, "idCardNumber": id_number});
                ("ProjectWorker.Add", Some(("ProjectWorker.Query", filter)))
            } else {
                ("ProjectWorker.Update", None)
            };
            Prepared {
                group: Group {
                    method,
                    team,
                    single: false,
                },
                entry,
                query,
                team_id: None,
            }
        }
        UplinkKind::Entry | UplinkKind::Exit => {
            let date = codec::beijing_date(item.at);
            let kind = i32::from(item.kind == UplinkKind::Entry);
            let entry = json!({
                "idCardType": RESIDENT_ID, "idCardNumber": id_number, "date": date, "type": kind,
            });
            Prepared {
                group: Group {
                    method: "WorkerEntryExit.Add",
                    team,
                    single: false,
                },
                query: Some(("WorkerEntryExit.Query", entry.clone())),
                entry,
                team_id: None,
            }
        }
        UplinkKind::Attendance => {
            let Some(record) = app.store.attendance_record(item.ref_id).await? else {
                return Ok(Resolved::Refuse("考勤记录不存在".to_owned()));
            };
            // A two-way device's record has no direction: reported as in.
            let direction = match record.direction {
                Direction::Out => "02",
                Direction::In | Direction::Both => "01",
            };
            let entry = json!({
                "idCardType": RESIDENT_ID, "idCardNumber": id_number,
                "date": codec::beijing_datetime(record.record_time), "direction": direction,
            });
            Prepared {
                group: Group {
                    method: "WorkerAttendance.Add",
                    team,
                    single: false,
                },
                query: Some(("WorkerAttendance.Query", entry.clone())),
                entry,
                team_id: None,
            }
        }
        // Handled above; kept for exhaustiveness.
        UplinkKind::Team => return Ok(Resolved::Wait("班组条目".to_owned())),
    };
    Ok(Resolved::Send(Box::new(prepared)))
}
