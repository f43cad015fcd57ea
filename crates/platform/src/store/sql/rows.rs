//! Reading model types back from rows ([`FromRow`]), one impl per type.

use rollcall_protocol::ids::Secret;
use sqlx::any::AnyRow;

use super::{FromRow, col, col_bool, col_parsed, col_u32};
use crate::store::console::*;
use crate::store::model::*;
use crate::store::{StoreError, StoreResult};
use rollcall_rules::geo::{CoordinateSystem, Fence};

impl FromRow for Vendor {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Vendor {
            id: col(row, "id")?,
            name: col(row, "name")?,
            access_id: col(row, "access_id")?,
            access_key: Secret::new(col::<String>(row, "access_key")?),
            access_secret: Secret::new(col::<String>(row, "access_secret")?),
            rsa_public_key: col(row, "rsa_public_key")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Credential {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Credential {
            access_id: col(row, "access_id")?,
            access_key: Secret::new(col::<String>(row, "access_key")?),
            access_secret: Secret::new(col::<String>(row, "access_secret")?),
            vendor_id: col(row, "vendor_id")?,
            revoked_at: col(row, "revoked_at")?,
        })
    }
}

impl FromRow for Project {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        let system: String = col(row, "coordinate_system")?;
        let coordinate_system: CoordinateSystem =
            serde_json::from_value(serde_json::Value::String(system.clone())).map_err(|_| {
                StoreError::Corrupt(format!(
                    "column coordinate_system: unknown value {system:?}"
                ))
            })?;
        let fence = col::<Option<String>>(row, "fence")?
            .map(|text| serde_json::from_str::<Fence>(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("column fence: {e}")))?;
        Ok(Project {
            id: col(row, "id")?,
            name: col(row, "name")?,
            code: col(row, "code")?,
            address: col(row, "address")?,
            coordinate_system,
            fence,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Device {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Device {
            sn: col(row, "sn")?,
            vendor_id: col(row, "vendor_id")?,
            project_id: col(row, "project_id")?,
            kind: col_parsed(row, "kind", DeviceKind::parse)?,
            direction: col_parsed(row, "direction", Direction::parse)?,
            name: col(row, "name")?,
            enabled: col_bool(row, "enabled")?,
            firmware_version: col(row, "firmware_version")?,
            ip: col(row, "ip")?,
            last_heartbeat_at: col(row, "last_heartbeat_at")?,
            person_count: col(row, "person_count")?,
            face_count: col(row, "face_count")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for PresenceTransition {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(PresenceTransition {
            sn: col(row, "sn")?,
            online: col_bool(row, "online")?,
            at: col(row, "at")?,
        })
    }
}

impl FromRow for Worker {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Worker {
            person_id: col(row, "person_id")?,
            idcard_no: col(row, "idcard_no")?,
            name: col(row, "name")?,
            gender: col(row, "gender")?,
            nation: col(row, "nation")?,
            address: col(row, "address")?,
            phone: col(row, "phone")?,
            face_key: col(row, "face_key")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl FromRow for Task {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Task {
            taskid: col(row, "taskid")?,
            sn: col(row, "sn")?,
            apicode: col(row, "apicode")?,
            param: col(row, "param")?,
            state: col_parsed(row, "state", TaskState::parse)?,
            created_at: col(row, "created_at")?,
            delivered_at: col(row, "delivered_at")?,
            finished_at: col(row, "finished_at")?,
        })
    }
}

impl FromRow for PersonSync {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(PersonSync {
            person_id: col(row, "person_id")?,
            person_ok: col_bool(row, "person_ok")?,
            person_err: col(row, "person_err")?,
            face_ok: col_bool(row, "face_ok")?,
            face_err: col(row, "face_err")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl FromRow for ReconcilePage {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(ReconcilePage {
            taskid: col(row, "taskid")?,
            page: col_u32(row, "page")?,
            total_page: col_u32(row, "total_page")?,
            data: col(row, "data")?,
        })
    }
}

impl FromRow for Attendance {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        let flags: String = col(row, "flags")?;
        let bit_type = col::<Option<i64>>(row, "bit_type")?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| StoreError::Corrupt(format!("column bit_type: {v} is not a u32")))
            })
            .transpose()?;
        Ok(Attendance {
            record_id: col(row, "record_id")?,
            sn: col(row, "sn")?,
            person_id: col(row, "person_id")?,
            r#type: col_u32(row, "record_type")?,
            bit_type,
            record_time: col(row, "record_time")?,
            received_at: col(row, "received_at")?,
            project_id: col(row, "project_id")?,
            direction: col_parsed(row, "direction", Direction::parse)?,
            photo_key: col(row, "photo_key")?,
            flags: flags
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            temperature: col(row, "temperature")?,
            extra: col(row, "extra")?,
        })
    }
}

impl FromRow for User {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(User {
            id: col(row, "id")?,
            username: col(row, "username")?,
            display_name: col(row, "display_name")?,
            password_hash: col(row, "password_hash")?,
            role: col_parsed(row, "role", Role::parse)?,
            disabled: col_bool(row, "disabled")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for SessionRow {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(SessionRow {
            token_hash: col(row, "token_hash")?,
            user_id: col(row, "user_id")?,
            csrf: col(row, "csrf")?,
            created_at: col(row, "created_at")?,
            expires_at: col(row, "expires_at")?,
        })
    }
}

impl FromRow for ApiTokenRow {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(ApiTokenRow {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            name: col(row, "name")?,
            token_hash: col(row, "token_hash")?,
            created_at: col(row, "created_at")?,
            last_used_at: col(row, "last_used_at")?,
            revoked_at: col(row, "revoked_at")?,
        })
    }
}

impl FromRow for AuditEntry {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(AuditEntry {
            id: col(row, "id")?,
            at: col(row, "at")?,
            actor: col(row, "actor")?,
            user_id: col(row, "user_id")?,
            action: col(row, "action")?,
            target: col(row, "target")?,
            detail: col(row, "detail")?,
            ip: col(row, "ip")?,
        })
    }
}

impl FromRow for Team {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Team {
            id: col(row, "id")?,
            project_id: col(row, "project_id")?,
            name: col(row, "name")?,
            leader: col(row, "leader")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Member {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Member {
            project_id: col(row, "project_id")?,
            person_id: col(row, "person_id")?,
            status: col(row, "status")?,
            blacklisted: col_bool(row, "blacklisted")?,
            team_id: col(row, "team_id")?,
            trade: col(row, "trade")?,
            joined_at: col(row, "joined_at")?,
            exited_at: col(row, "exited_at")?,
        })
    }
}

impl FromRow for BlacklistEntry {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(BlacklistEntry {
            person_id: col(row, "person_id")?,
            reason: col(row, "reason")?,
            created_by: col(row, "created_by")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Firmware {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Firmware {
            id: col(row, "id")?,
            vendor_id: col(row, "vendor_id")?,
            kind: col(row, "kind")?,
            version: col(row, "version")?,
            file_key: col(row, "file_key")?,
            sha256: col(row, "sha256")?,
            size: col(row, "size")?,
            notes: col(row, "notes")?,
            created_at: col(row, "created_at")?,
        })
    }
}
