//! C_HEARTBEAT (ZJ-HB-01, ZJ-HB-02): what the device reports about itself, and the tasks
//! waiting for it.

use serde::{Deserialize, Serialize};

use super::lenient;

/// C_HEARTBEAT param: `{deviceVersion, deviceIp}`, both required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatParam {
    /// The device's firmware/software version, as the vendor writes it.
    #[serde(deserialize_with = "lenient::string")]
    pub device_version: String,
    /// The device's IP address as it sees it (often a private address).
    #[serde(deserialize_with = "lenient::string")]
    pub device_ip: String,
}

/// A [`HeartbeatResponse`] without tasks as [`super::to_json`] writes it: the answer most
/// heartbeats get, written without serialising.
pub const NO_TASKS_JSON: &str = r#"{"taskids":[]}"#;

/// C_HEARTBEAT response: the ids of this device's pending (or overdue) tasks, oldest first,
/// at most 100. No tasks: `{"taskids":[]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// Task ids as decimal strings.
    #[serde(default, deserialize_with = "lenient::strings_or_empty")]
    pub taskids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_tasks_answer_is_what_serialising_writes() {
        assert_eq!(
            super::super::to_json(&HeartbeatResponse::default()),
            NO_TASKS_JSON
        );
    }
}
