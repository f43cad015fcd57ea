//! Signed webhooks for integrators — the outbox's second profile (docs/UPLINK.md,
//! "Webhooks"). Events (`attendance`, `worker`, `device`, `task`) are queued per endpoint in
//! the transaction that stores what they are about; this loop delivers each endpoint's
//! events **in order, at least once**: a `2xx` answer delivers, anything else is retried
//! with the endpoint's exponential backoff (the queue behind waits), and after
//! `webhook_max_attempts` the event is marked `failed` in the delivery log and the next one
//! goes. One node delivers to an endpoint at a time (a lease row, as for the uplink).
//!
//! Each request is `POST {url}` with a JSON body `{"id", "event", "createdAt", "data"}` and
//! the headers `X-Rollcall-Event`, `X-Rollcall-Delivery` (the delivery id: a receiver
//! deduplicates on it), `X-Rollcall-Timestamp` (epoch seconds) and `X-Rollcall-Signature:
//! sha256=<hex>` — HMAC-SHA256 under the endpoint's secret of `"{timestamp}.{body}"`
//! ([`signature`]). A receiver checks the signature and refuses old timestamps.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;

use crate::runtime::util::{now_ms, random_hex128};
use crate::state::{App, AppState};
use crate::store::{StoreResult, WebhookDelivery, WebhookEndpoint};
use rollcall_rules::idcard;

/// Events per endpoint per round at most.
const MAX_PER_ROUND: usize = 100;
/// The part of a receiver's answer kept in the delivery log.
const MAX_ERROR_CHARS: usize = 200;

/// `sha256=<hex of HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <hmac::Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs until `stop`.
pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let settings = app.settings.uplink.clone();
    if !settings.enabled {
        return;
    }
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.webhook_timeout_ms.max(1)))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook HTTP client cannot start; nothing is delivered");
            return;
        }
    };
    let owner = random_hex128();
    let mut tick = tokio::time::interval(Duration::from_millis(settings.poll_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let work = async {
            let endpoints = match app.store.webhooks().await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "reading webhook endpoints failed; will retry");
                    return;
                }
            };
            for endpoint in endpoints.into_iter().filter(|e| e.enabled) {
                let now = now_ms();
                if endpoint.retry_at > now {
                    continue;
                }
                let until = now.saturating_add(settings.lease_ms as i64);
                if !matches!(
                    app.store
                        .take_webhook_lease(endpoint.id, &owner, now, until)
                        .await,
                    Ok(true)
                ) {
                    continue;
                }
                if let Err(e) = deliver_due(&app, &http, &endpoint).await {
                    tracing::warn!(endpoint = endpoint.id, error = %e, "webhook delivery failed; will retry");
                }
            }
        };
        tokio::select! {
            () = work => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Delivers the endpoint's pending events in order until one fails.
async fn deliver_due(
    app: &App,
    http: &reqwest::Client,
    endpoint: &WebhookEndpoint,
) -> StoreResult<()> {
    let due = app
        .store
        .webhook_due(endpoint.id, MAX_PER_ROUND as u32)
        .await?;
    for mut delivery in due {
        let body = json!({
            "id": delivery.id.to_string(),
            "event": delivery.event,
            "createdAt": delivery.created_at,
            "data": data(app, &delivery).await?,
        })
        .to_string();
        let timestamp = now_ms() / 1000;
        let sent = http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("x-rollcall-event", &delivery.event)
            .header("x-rollcall-delivery", delivery.id.to_string())
            .header("x-rollcall-timestamp", timestamp.to_string())
            .header(
                "x-rollcall-signature",
                signature(endpoint.secret.expose(), timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        let (status, error) = match sent {
            Ok(r) if r.status().is_success() => (Some(i64::from(r.status().as_u16())), None),
            Ok(mut r) => {
                let status = r.status().as_u16();
                // Only the start of the answer is read (a receiver's body is not bounded).
                let mut head = Vec::new();
                while head.len() < MAX_ERROR_CHARS * 4 {
                    match r.chunk().await {
                        Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                let text: String = String::from_utf8_lossy(&head)
                    .chars()
                    .take(MAX_ERROR_CHARS)
                    .collect();
                (
                    Some(i64::from(status)),
                    Some(format!("HTTP {status} {text}")),
                )
            }
            Err(e) => (None, Some(e.to_string())),
        };
        delivery.last_status = status;
        delivery.last_error = error.clone();
        let now = now_ms();
        if error.is_none() {
            app.store
                .record_webhook_attempt(&delivery, "delivered", now, 0)
                .await?;
            continue;
        }
        let s = &app.settings.uplink;
        if delivery.attempts + 1 >= s.webhook_max_attempts.max(1) {
            tracing::warn!(
                endpoint = endpoint.id,
                delivery = delivery.id,
                "webhook event given up after its last attempt"
            );
            app.store
                .record_webhook_attempt(&delivery, "failed", now, 0)
                .await?;
            continue;
        }
        let wait = s
            .backoff_ms
            .saturating_mul(1u64 << endpoint.failures.min(20))
            .min(s.backoff_max_ms);
        app.store
            .record_webhook_attempt(&delivery, "pending", now, now.saturating_add(wait as i64))
            .await?;
        // In order: nothing behind a failed event goes before it.
        return Ok(());
    }
    Ok(())
}

/// What the event is about, as it is now (`null` when it is gone). ID numbers masked.
async fn data(app: &App, d: &WebhookDelivery) -> StoreResult<Value> {
    let id = d.r#ref.parse::<i64>().ok();
    Ok(match (d.event.as_str(), id) {
        ("attendance", Some(id)) => match app.store.attendance_record(id).await? {
            Some(r) => json!({
                "recordId": r.record_id.to_string(), "sn": r.sn, "personId": r.person_id,
                "recordTime": r.record_time, "receivedAt": r.received_at,
                "projectId": r.project_id.map(|p| p.to_string()),
                "direction": r.direction.as_str(), "flags": r.flags,
            }),
            None => Value::Null,
        },
        ("worker", Some(id)) => match app.store.worker(id).await? {
            Some(w) => json!({
                "personId": w.person_id.to_string(), "name": w.name,
                "idcardNo": idcard::mask(&w.idcard_no), "updatedAt": w.updated_at,
            }),
            None => Value::Null,
        },
        ("task", Some(id)) => match app.store.task(id).await? {
            Some(t) => json!({
                "taskid": t.taskid.to_string(), "sn": t.sn, "apicode": t.apicode,
                "state": t.state, "finishedAt": t.finished_at,
            }),
            None => Value::Null,
        },
        ("device", _) => {
            let mut parts = d.r#ref.split('|');
            json!({
                "sn": parts.next().unwrap_or_default(),
                "online": parts.next() == Some("1"),
                "at": parts.next().and_then(|a| a.parse::<i64>().ok()),
            })
        }
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver recomputes the signature from the timestamp header and the raw body.
    /// A receiver recomputes the signature from the timestamp header and the raw body
    /// (vector computed with Python's `hmac`).
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let sig = signature("whsec-test", 1_700_000_000, br#"{"id":"1"}"#);
        assert_eq!(
            sig,
            "sha256=31eb1ba523eef495c25683b818d449a2ee3dcff2abe5630a2a042fe786e59839"
        );
        assert_ne!(sig, signature("other", 1_700_000_000, br#"{"id":"1"}"#));
        assert_ne!(
            sig,
            signature("whsec-test", 1_700_000_001, br#"{"id":"1"}"#)
        );
    }
}
