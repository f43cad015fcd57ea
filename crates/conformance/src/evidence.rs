//! Evidence: what was sent and received during a case, with times, as the report shows it.
//! Long strings (photos) are shortened and credentials masked: a report is handed to people,
//! and the accessKey and tokens in it would otherwise let its reader act as the device.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rollcall_protocol::Packet;
use serde::Serialize;
use serde_json::{Map, Value};

/// Which way an entry went, seen from the kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Sent,
    Received,
    Note,
}

/// One exchange step.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// Wall clock, epoch milliseconds.
    pub wall_ms: i64,
    pub dir: Dir,
    /// `tcp#1`, `http POST /device/api`, `prompt`….
    pub channel: String,
    pub text: String,
}

struct Inner {
    start: Instant,
    entries: Vec<Entry>,
}

/// The evidence of one case; cheap to clone (every probe of the case writes into it).
#[derive(Clone)]
pub struct Log(Arc<Mutex<Inner>>);

impl Default for Log {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Inner {
            start: Instant::now(),
            entries: Vec::new(),
        })))
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

/// At most this many entries are kept per case (a flood of heartbeats stays readable).
const MAX_ENTRIES: usize = 400;
/// Strings longer than this are shortened.
const MAX_STRING: usize = 160;

impl Log {
    pub fn push(&self, dir: Dir, channel: &str, text: String) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if inner.entries.len() >= MAX_ENTRIES {
            return;
        }
        let at_ms = u64::try_from(inner.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        inner.entries.push(Entry {
            at_ms,
            wall_ms: rollcall_protocol::time::now_ms(),
            dir,
            channel: channel.to_owned(),
            text,
        });
    }

    pub fn note(&self, text: impl Into<String>) {
        self.push(Dir::Note, "kit", text.into());
    }

    pub fn packet(&self, dir: Dir, channel: &str, p: &Packet) {
        self.push(dir, channel, render_packet(p));
    }

    pub fn body(&self, dir: Dir, channel: &str, body: &[u8]) {
        self.push(dir, channel, render_body(body));
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .clone()
    }
}

/// A packet as JSON text: its non-empty fields, credentials masked, long strings shortened.
pub fn render_packet(p: &Packet) -> String {
    let mut m = Map::new();
    let fields: [(&str, &str); 13] = [
        ("version", &p.version),
        ("sn", &p.sn),
        ("token", &p.token),
        ("apicode", &p.apicode),
        ("timeStamp", &p.time_stamp),
        ("taskid", &p.taskid),
        ("accessId", &p.access_id),
        ("accessKey", &p.access_key),
        ("param", &p.param),
        ("error", &p.error),
        ("response", &p.response),
        ("sign", &p.sign),
        ("", ""),
    ];
    for (k, v) in fields {
        if !k.is_empty() && !v.is_empty() {
            m.insert(k.into(), Value::String(v.to_owned()));
        }
    }
    if p.success {
        m.insert("success".into(), Value::Bool(true));
    }
    if p.seq != 0 {
        m.insert("seq".into(), Value::from(p.seq));
    }
    let mut v = Value::Object(m);
    scrub(&mut v);
    v.to_string()
}

/// An HTTP body: JSON scrubbed like a packet, anything else shortened.
pub fn render_body(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            scrub(&mut v);
            v.to_string()
        }
        Err(_) => shorten(&String::from_utf8_lossy(body), 2000),
    }
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if matches!(k.as_str(), "accessKey" | "token")
                    && let Value::String(s) = val
                {
                    *s = mask(s);
                    continue;
                }
                scrub(val);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::String(s) => {
            // A param or response is JSON text inside a string: scrub inside it.
            if s.starts_with(['{', '['])
                && let Ok(mut inner) = serde_json::from_str::<Value>(s)
            {
                scrub(&mut inner);
                *s = inner.to_string();
            } else {
                *s = shorten(s, MAX_STRING);
            }
        }
        _ => {}
    }
}

/// The first four characters and the length: enough to tell two tokens apart.
pub fn mask(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let head: String = s.chars().take(4).collect();
    format!("{head}…({} chars)", s.chars().count())
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max / 2).collect();
    format!("{head}…({} bytes)", s.len())
}
