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

impl HeartbeatParam {
    /// The param read in place, when it is strict JSON whose two members are strings without
    /// escapes (what devices send): then the values [`super::parse`] gives, borrowed. `None`
    /// for anything else, which `parse` may still accept (JSON5, numbers, escapes) or refuse
    /// with its message.
    pub fn peek(text: &str) -> Option<HeartbeatSeen<'_>> {
        serde_json::from_str(text).ok()
    }
}

/// A [`HeartbeatParam`] borrowed from its text ([`HeartbeatParam::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatSeen<'a> {
    pub device_version: &'a str,
    pub device_ip: &'a str,
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
    fn a_peek_reads_plain_strings_in_place_and_leaves_the_rest_to_parse() {
        let plain = r#"{"deviceVersion":"V1.2","deviceIp":"10.0.0.8","extra":[1]}"#;
        let seen = HeartbeatParam::peek(plain).expect("plain strings");
        assert_eq!((seen.device_version, seen.device_ip), ("V1.2", "10.0.0.8"));
        for other in [
            r#"{"deviceVersion":"V\u0031","deviceIp":"10.0.0.8"}"#,
            r#"{"deviceVersion":12,"deviceIp":"10.0.0.8"}"#,
            r#"{deviceVersion:"V1",deviceIp:"10.0.0.8"}"#,
            r#"{"deviceVersion":"V1"}"#,
            r#"{"deviceVersion":"V1","deviceIp":"a","deviceIp":"b"}"#,
        ] {
            assert_eq!(HeartbeatParam::peek(other), None, "{other}");
        }
        // What parse accepts of those, it reads as the device meant it.
        let parsed: HeartbeatParam =
            super::super::parse(r#"{"deviceVersion":"V\u0031","deviceIp":"10.0.0.8"}"#)
                .expect("escapes");
        assert_eq!(parsed.device_version, "V1");
    }

    #[test]
    fn the_no_tasks_answer_is_what_serialising_writes() {
        assert_eq!(
            super::super::to_json(&HeartbeatResponse::default()),
            NO_TASKS_JSON
        );
    }
}
