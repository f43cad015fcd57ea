//! Every `rollcall bench` scenario, once, at a tiny size: it completes, prints its table and
//! writes JSON whose counts are sane. No timing is asserted. The heartbeat scenario compares
//! against Mosquitto on 127.0.0.1:1883 when it answers and notes the skip when it does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use std::process::Command;

use serde_json::Value;

/// Runs `rollcall bench <args…> --runs 1 --json FILE` and returns the JSON.
fn bench(args: &[&str]) -> Value {
    bench_runs(args, 1)
}

/// Runs `rollcall bench <args…> --runs N --json FILE` and returns the JSON.
fn bench_runs(args: &[&str], runs: u32) -> Value {
    bench_env(args, runs, &[])
}

/// [`bench_runs`] with extra environment for the bench and the platforms it starts.
fn bench_env(args: &[&str], runs: u32, env: &[(&str, String)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let svg = dir.path().join("out.svg");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("bench")
        .args(args)
        .args(["--runs", &runs.to_string()])
        .arg("--json")
        .arg(&json);
    let chart = args.first() == Some(&"heartbeat");
    if chart {
        cmd.arg("--svg").arg(&svg);
    }
    let out = cmd
        .env("RUST_LOG", "error")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run rollcall bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("== rollcall bench"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(v["runs"], runs);
    assert!(
        v["machine"]["disk"]["fsync_4k_per_s"].as_f64().unwrap() > 0.0,
        "{}",
        v["machine"]
    );
    // The CPU's family and model number, not the model name's line (the keys overlap).
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if let Some((_, model)) = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim_end() == "model")
    {
        assert_eq!(v["machine"]["cpu_model"], model.trim(), "{}", v["machine"]);
    }
    if chart {
        let svg = std::fs::read_to_string(&svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    }
    v
}

fn rows(v: &Value) -> &Vec<Value> {
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{v}");
    rows
}

/// `--runs 3`: three fresh servers, medians in the rows, the runs' values where they differ.
#[test]
fn repeated_runs_report_medians_and_their_spread() {
    let v = bench_runs(&["idle", "--devices", "5", "--settle", "0.2"], 3);
    let r = &rows(&v)[0];
    assert_eq!(r["devices"], 5);
    assert!(r["rss_after_kib"].as_u64().unwrap() > 0);
    let spread = v["spread"][0].as_object().unwrap();
    for (column, s) in spread {
        assert_eq!(s["values"].as_array().unwrap().len(), 3, "{column}");
        assert!(s["min"].as_f64() <= r[column].as_f64() && r[column].as_f64() <= s["max"].as_f64());
    }
}

#[test]
fn idle_holds_devices_and_reads_rss() {
    let v = bench(&["idle", "--devices", "5", "--settle", "0.2"]);
    let r = &rows(&v)[0];
    assert_eq!(r["devices"], 5);
    assert_eq!(r["authenticated"], true);
    assert!(r["rss_after_kib"].as_u64().unwrap() > 0);

    let v = bench(&["idle", "--devices", "5", "--settle", "0.2", "--bare"]);
    let r = &rows(&v)[0];
    assert_eq!(
        (r["devices"].clone(), r["authenticated"].clone()),
        (5.into(), false.into())
    );
}

#[test]
fn heartbeat_measures_the_platform_and_the_floor() {
    let v = bench(&[
        "heartbeat",
        "--connections",
        "1,4",
        "--duration",
        "0.3",
        "--open-rate",
        "200",
        "--open-connections",
        "2",
    ]);
    let rows = rows(&v);
    for target in ["rollcall", "floor"] {
        for mode in ["closed", "open"] {
            let r = rows
                .iter()
                .find(|r| r["target"] == target && r["mode"] == mode)
                .unwrap_or_else(|| panic!("{target} {mode}: {v}"));
            assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
            assert_eq!(r["failed"], 0, "{r}");
            assert!(r["p50_us"].as_f64().unwrap() > 0.0, "{r}");
            // The server's user time is reported apart, and is part of its CPU time.
            let cpu = r["server_cpu_us_per_op"].as_f64().expect("server CPU");
            let user = r["server_user_us_per_op"]
                .as_f64()
                .expect("server user time");
            assert!(user <= cpu, "{r}");
        }
    }
    let mosquitto = rows.iter().any(|r| r["target"] == "mosquitto");
    let skipped = v["notes"].to_string().contains("Mosquitto skipped");
    assert!(mosquitto || skipped, "{v}");
}

#[test]
fn signin_is_durable_and_compared_with_the_disk() {
    let v = bench(&["signin", "--devices", "2", "--window", "2", "--count", "5"]);
    let rows = rows(&v);
    assert_eq!(rows[0]["ops"], 10);
    assert_eq!(rows[0]["failed"], 0);
    assert!(rows[0]["vs_disk_files"].as_f64().unwrap() > 0.0, "{v}");
    assert!(rows[0]["vs_disk_segment"].as_f64().unwrap() > 0.0, "{v}");
    // Both disk anchors: one file per photo (the issue's), and one append-only segment.
    assert_eq!(rows.len(), 3, "{v}");
    for disk in &rows[1..] {
        assert!(disk["per_s"].as_f64().unwrap() > 0.0, "{disk}");
    }
}

/// Issue 15: the same load against a platform whose photos go to S3, beside the local store
/// of the same run.
#[test]
fn signin_with_an_s3_photo_store_is_reported_beside_the_local_store() {
    let s3 = rollcall_platform::store::test_s3::TestS3::new("bench");
    let store = s3.photo_store();
    // The platform started by the bench reads the AWS_* environment.
    let env: Vec<(&str, String)> = s3
        .env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    let v = bench_env(
        &[
            "signin",
            "--devices",
            "2",
            "--window",
            "2",
            "--count",
            "5",
            "--photo-store",
            &store,
        ],
        1,
        &env,
    );
    let rows = rows(&v);
    let s3_row = rows
        .iter()
        .find(|r| r["what"].as_str().is_some_and(|w| w.contains("s3://")))
        .unwrap_or_else(|| panic!("an S3 row: {v}"));
    assert_eq!(s3_row["ops"], 10, "{s3_row}");
    assert_eq!(s3_row["failed"], 0, "{s3_row}");
    assert!(s3_row["vs_local"].as_f64().unwrap() > 0.0, "{s3_row}");
}

/// Issue 15's multi-node run: the S3 run on three nodes of one PostgreSQL database, the
/// devices spread over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_on_three_nodes_of_one_database() {
    let db = rollcall_platform::store::test_db::TestDb::postgres("bench");
    db.open_postgres().await.close().await;
    let s3 = rollcall_platform::store::test_s3::TestS3::new("bench-nodes");
    let store = s3.photo_store();
    let env: Vec<(&str, String)> = s3
        .env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    let url = db.url.clone();
    let v = tokio::task::spawn_blocking(move || {
        bench_env(
            &[
                "--database-url",
                &url,
                "signin",
                "--devices",
                "3",
                "--window",
                "2",
                "--count",
                "4",
                "--photo-store",
                &store,
                "--nodes",
                "3",
            ],
            1,
            &env,
        )
    })
    .await
    .unwrap();
    let rows = rows(&v);
    let nodes_row = rows
        .iter()
        .find(|r| r["nodes"] == 3)
        .unwrap_or_else(|| panic!("a three-node row: {v}"));
    assert_eq!(nodes_row["ops"], 12, "{nodes_row}");
    assert_eq!(nodes_row["failed"], 0, "{nodes_row}");
}

#[test]
fn sync_fills_a_device() {
    let v = bench(&["sync", "--persons", "5", "--timeout", "120"]);
    let r = &rows(&v)[0];
    assert_eq!(r["complete"], true, "{r}");
    assert_eq!(r["faces_on_device"], 5);
}

#[test]
fn backlog_drains_with_and_without_photos() {
    let v = bench(&[
        "backlog",
        "--records",
        "20",
        "--small-photos",
        "--timeout",
        "120",
    ]);
    let rows = rows(&v);
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["left"], 0, "{r}");
        assert!(r["acked"].as_u64().unwrap() >= 20, "{r}");
    }
}
