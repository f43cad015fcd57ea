//! The queue window: records loaded from the durable store in id order, up to `window`
//! sign-ins (and `window_bytes` of photos) in flight at once, a jittered pause after a
//! transient failure.

use rollcall_protocol::{ApiCode, ErrorCode, ProtocolError};

use super::{Action, Kind, Session, SessionState, Timer};
use crate::record::QueuedRecord;

impl Session {
    pub(super) fn pump(&mut self, now: i64) {
        if self.state != SessionState::Ready || self.paused {
            return;
        }
        while self.in_flight.len() < self.cfg.window {
            // The byte budget keeps a window of photo records from holding hundreds of
            // megabytes of a gate's memory; records without photos fill the whole window.
            let next = self.pending.first_key_value().map(|(_, r)| r.photo_len());
            if next.is_some_and(|n| {
                !self.in_flight.is_empty() && self.in_flight_bytes + n > self.cfg.window_bytes
            }) {
                break;
            }
            let Some((id, record)) = self.pending.pop_first() else {
                break;
            };
            let mut req = self.request(ApiCode::SignIn, now);
            req.param = Some(record.wire_param());
            if self.send(req, ApiCode::SignIn, Kind::SignIn(id), now) {
                self.in_flight_bytes += record.photo_len();
                self.in_flight.insert(id, record);
            } else {
                self.actions.push(Action::DeadLetter {
                    id,
                    error: ProtocolError::with_detail(
                        ErrorCode::ParamInvalid,
                        "the device could not sign this record",
                    ),
                });
            }
        }
        self.maybe_load();
    }

    fn maybe_load(&mut self) {
        let low = self.pending.len() < self.cfg.window.max(1);
        if low && self.loader.requested.is_none() && !self.loader.exhausted {
            let limit = self.cfg.load_batch.max(1);
            self.loader.requested = Some((limit, self.loader.generation));
            self.actions.push(Action::LoadRecords {
                after: self.loader.highest,
                limit,
            });
        }
    }

    pub(super) fn on_loaded(&mut self, now: i64, records: Vec<QueuedRecord>) {
        let Some((limit, generation)) = self.loader.requested.take() else {
            return;
        };
        let short = records.len() < limit;
        for r in records {
            self.loader.highest = self.loader.highest.max(r.id);
            if !self.in_flight.contains_key(&r.id) {
                self.pending.insert(r.id, r);
            }
        }
        // Exhausted only if nothing was enqueued since the load was asked for.
        self.loader.exhausted = short && generation == self.loader.generation;
        self.pump(now);
    }

    pub(super) fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            let delay = self.cfg.retry.delay(self.transient_failures, &mut self.rng);
            self.transient_failures = self.transient_failures.saturating_add(1);
            self.actions.push(Action::Schedule(Timer::Resume, delay));
        }
    }
}
