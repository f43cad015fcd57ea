//! 60,000 records taken offline (a tenth by default), then the network returns: the queue
//! drains in order through a window of pipelined sign-ins, and the platform holds every
//! record exactly once. A record the platform refuses for good goes to the dead letters and
//! does not hold up the others.

use std::time::{Duration, Instant};

use rollcall_device::photo::sample::SMALL_JPEG;
use rollcall_device::{AttendanceRecord, Device, DeviceEvent};

use crate::helpers::{TestPlatform, assert_exactly_once_in_order, eventually, scaled};

/// `n` face records with photos, one millisecond apart, ending an hour ago.
pub fn offline_records(n: usize, persons: &[String]) -> Vec<AttendanceRecord> {
    let start = rollcall_protocol::time::now_ms() - 3_600_000 - n as i64;
    (0..n)
        .map(|i| {
            AttendanceRecord::face(
                persons[i % persons.len()].clone(),
                start + i as i64,
                Some(SMALL_JPEG.to_vec()),
            )
        })
        .collect()
}

pub fn keys(records: &[AttendanceRecord]) -> Vec<(String, i64)> {
    records
        .iter()
        .map(|r| (r.person_id.clone(), r.record_time))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_thousand_offline_records_drain_in_order_exactly_once() {
    let n = scaled(60_000);
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let project = platform.project().await;
    let persons: Vec<String> = platform
        .enrol_fast(20, &project)
        .await
        .iter()
        .map(i64::to_string)
        .collect();
    let sn = "SDK-BACKLOG-1";
    platform.register_device(sn, &vendor, Some(&project)).await;

    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
    let mut events = device.subscribe();
    let handle = device.handle();

    // Offline: the records pile up in the durable queue.
    let records = offline_records(n, &persons);
    let expected = keys(&records);
    let started = Instant::now();
    let (first, second) = records.split_at(n / 2);
    for chunk in first.chunks(2000) {
        handle.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    // Amid them, one record from an older firmware that the platform refuses (type 3 is no
    // method), written straight into the queue past the SDK's own check.
    let bad_time = expected[n / 2].1;
    handle
        .store()
        .call(move |c| {
            c.execute(
                "INSERT INTO records (person_id, type, record_time, param, taken_at)
                 VALUES ('1', 3, ?1, ?2, 0)",
                rusqlite_params(bad_time),
            )?;
            Ok(())
        })
        .await
        .unwrap();
    for chunk in second.chunks(2000) {
        handle.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    eprintln!("enqueued {n} records in {:?}", started.elapsed());
    assert_eq!(handle.queue_len().await.unwrap(), n as u64 + 1);

    // The network returns.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));
    let drained = Instant::now();
    eventually("the queue to drain", Duration::from_secs(900), || async {
        (handle.queue_len().await.unwrap() == 0).then_some(())
    })
    .await;
    let drain_time = drained.elapsed();
    eprintln!(
        "drained {n} records in {drain_time:?} ({:.0} records/s)",
        n as f64 / drain_time.as_secs_f64()
    );

    // Pipelined, not stop-and-wait: acknowledgements came while others were in flight, and
    // nothing was a duplicate on a clean run.
    let stats = handle.stats();
    assert_eq!(
        stats.acked.load(std::sync::atomic::Ordering::Relaxed),
        n as u64
    );
    assert_eq!(
        stats.duplicates.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let dead = handle.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error_code, "403_01");
    assert_eq!(dead[0].record_time, bad_time);
    let mut dead_lettered = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, DeviceEvent::DeadLettered { .. }) {
            dead_lettered += 1;
        }
    }
    assert_eq!(dead_lettered, 1);

    assert_exactly_once_in_order(&platform, sn, &expected).await;

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}

fn rusqlite_params(t: i64) -> impl rusqlite::Params {
    let param = format!(r#"{{"personId":"1","type":3,"recordTime":{t}}}"#);
    (t, param)
}
