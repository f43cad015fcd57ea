//! What a bench run reports: rows of named values, printed as a table on stdout, written as
//! JSON (`--json FILE`), and for the heartbeat scenario drawn as an SVG chart of latency
//! against connections (`--svg FILE`) by a small hand-written SVG writer that reads the same
//! JSON. Several runs are folded into one report of medians ([`Report::aggregate`]); the
//! machine is described by [`fingerprint`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use serde_json::{Map, Value, json};

/// One row: named values in column order.
#[derive(Debug, Default, Clone)]
pub struct Row(pub Vec<(String, Value)>);

impl Row {
    pub fn new() -> Self {
        Row::default()
    }

    /// Adds a column (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.push((key.to_owned(), value.into()));
        self
    }

    /// The value of a column.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// How a numeric value varied over the runs (only values that did vary are kept).
#[derive(Debug, Clone)]
pub struct Spread {
    pub min: Value,
    pub max: Value,
    /// Every run's value, in run order.
    pub values: Vec<Value>,
}

/// A scenario's result.
#[derive(Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub rows: Vec<Row>,
    /// Free-text remarks (what was skipped and why, the machine's state).
    pub notes: Vec<String>,
    /// How many runs the rows are the medians of (1 for a single run).
    pub runs: usize,
    /// Per row: the columns that varied between runs.
    pub spreads: Vec<BTreeMap<String, Spread>>,
    /// The machine ([`fingerprint`]); [`machine`] when unset.
    pub machine: Option<Value>,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_owned(),
            runs: 1,
            ..Report::default()
        }
    }

    /// Folds the runs of one scenario into one report: each numeric value becomes the median
    /// of the runs (a run's own ratios are medians of ratios taken inside each run, never
    /// ratios of medians), with min, max and every run's value where they differ. A verdict
    /// (`met`, a boolean) is the majority's: for an odd count of runs the same as judging the
    /// median, so a table never shows a median that meets its target beside a `false` taken
    /// from one run. Rows are matched by position; other values are the first run's. Notes are
    /// kept once each.
    pub fn aggregate(runs: Vec<Report>) -> Report {
        let Some(first) = runs.first() else {
            return Report::default();
        };
        if runs.len() == 1 {
            return runs.into_iter().next().unwrap_or_default();
        }
        let mut out = Report::new(&first.scenario);
        out.runs = runs.len();
        for (i, row) in first.rows.iter().enumerate() {
            let mut merged = Row::new();
            let mut spread = BTreeMap::new();
            for (key, first_value) in &row.0 {
                let values: Vec<Value> = runs
                    .iter()
                    .filter_map(|r| r.rows.get(i)?.get(key).cloned())
                    .collect();
                let whole = values.len() == runs.len();
                if whole && values.iter().all(Value::is_boolean) {
                    let yes = values.iter().filter(|v| v.as_bool() == Some(true)).count();
                    // A tie (an even count) is not a majority: not met.
                    let verdict = json!(yes * 2 > values.len());
                    if yes > 0 && yes < values.len() {
                        let (min, max) = (json!(false), json!(true));
                        spread.insert(key.clone(), Spread { min, max, values });
                    }
                    merged = merged.with(key, verdict);
                    continue;
                }
                let numeric = whole && values.iter().all(Value::is_number);
                if !numeric {
                    merged = merged.with(key, first_value.clone());
                    continue;
                }
                let (median, min, max) = median_min_max(&values);
                if min != max {
                    spread.insert(key.clone(), Spread { min, max, values });
                }
                merged = merged.with(key, median);
            }
            out.rows.push(merged);
            out.spreads.push(spread);
        }
        for note in runs.iter().flat_map(|r| &r.notes) {
            if !out.notes.contains(note) {
                out.notes.push(note.clone());
            }
        }
        out
    }

    /// The whole report, machine included, as JSON.
    pub fn to_json(&self) -> Value {
        let spread: Vec<Value> = self
            .spreads
            .iter()
            .map(|row| {
                Value::Object(
                    row.iter()
                        .map(|(k, s)| {
                            (
                                k.clone(),
                                json!({"min": s.min, "max": s.max, "values": s.values}),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "machine": self.machine.clone().unwrap_or_else(machine),
            "runs": self.runs,
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "spread": spread,
            "notes": self.notes,
        })
    }

    /// A plain-text table, columns in order of first appearance.
    pub fn table(&self) -> String {
        let mut cols: Vec<String> = Vec::new();
        for r in &self.rows {
            for (k, _) in &r.0 {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
        let no_spread = BTreeMap::new();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let spread = self.spreads.get(i).unwrap_or(&no_spread);
                cols.iter()
                    .map(|c| match (r.get(c), spread.get(c)) {
                        (None, _) => String::new(),
                        (Some(v), None) => cell(v),
                        // The median, then the range over the runs.
                        (Some(v), Some(s)) => {
                            format!("{} [{}–{}]", cell(v), cell(&s.min), cell(&s.max))
                        }
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([c.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("== rollcall bench {} ==\n", self.scenario);
        if self.runs > 1 {
            let _ = writeln!(
                out,
                "medians of {} runs; [min–max] where the runs differ",
                self.runs
            );
        }
        let line = |out: &mut String, vals: &[String]| {
            for (i, v) in vals.iter().enumerate() {
                let _ = write!(out, "{:>w$}  ", v, w = widths[i]);
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&mut out, &cols);
        for r in &cells {
            line(&mut out, r);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                if f.abs() >= 100.0 {
                    format!("{f:.0}")
                } else if f.abs() >= 1.0 {
                    format!("{f:.2}")
                } else {
                    format!("{f:.3}")
                }
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The median (for an even count, the mean of the middle two), min and max of numbers; an odd
/// count's median is one of the values, so integers stay integers.
fn median_min_max(values: &[Value]) -> (Value, Value, Value) {
    let mut sorted: Vec<&Value> = values.iter().collect();
    sorted.sort_by(|a, b| {
        let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
        a.total_cmp(&b)
    });
    let n = sorted.len();
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return (Value::Null, Value::Null, Value::Null);
    };
    let median = if n % 2 == 1 || sorted[n / 2 - 1] == sorted[n / 2] {
        sorted[n / 2].clone()
    } else {
        let mid = |v: &Value| v.as_f64().unwrap_or(0.0);
        json!((mid(sorted[n / 2 - 1]) + mid(sorted[n / 2])) / 2.0)
    };
    (median, min.clone(), max.clone())
}

/// The machine as [`machine`] describes it, plus what decides whether two machines' figures
/// compare: the CPU's MHz, family, model number and stepping, kernel, clock source, whether it
/// is a guest, the disk's rates measured now in the directory the scenarios' servers keep
/// their data in (the temporary directory), and what waking a sleeping thread costs
/// ([`wakeup_cost`]).
pub fn fingerprint() -> Value {
    let mut m = machine();
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // The first CPU's line whose key is exactly `name` ("model" is not "model name").
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim_end() == name).then(|| value.trim().to_owned())
        })
    };
    let guest = field("flags").map(|f| f.split_whitespace().any(|x| x == "hypervisor"));
    if let Value::Object(obj) = &mut m {
        obj.insert("kernel".into(), json!(read("/proc/sys/kernel/osrelease")));
        obj.insert(
            "clocksource".into(),
            json!(read(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource"
            )),
        );
        obj.insert("cpu_mhz".into(), json!(field("cpu MHz")));
        // One model name covers CPUs of different generations ("AMD EPYC" is family 25
        // model 1 on one machine, model 17 on another): the numbers tell them apart.
        for (key, name) in [
            ("cpu_family", "cpu family"),
            ("cpu_model", "model"),
            ("cpu_stepping", "stepping"),
        ] {
            obj.insert(key.into(), json!(field(name)));
        }
        obj.insert("virtualized".into(), json!(guest));
        obj.insert("disk".into(), disk_rates(&std::env::temp_dir()));
        obj.insert("wakeup".into(), wakeup_cost());
    }
    m
}

/// What waking a sleeping thread costs here, measured now: two threads hand a token back and
/// forth through channels, each asleep until it comes, and the two threads' CPU time
/// (`/proc/thread-self/schedstat`, user and kernel, in ns) and the wall time are divided by
/// the wake-ups (two a round trip). Five samples, each with a thread of its own that the
/// scheduler may place elsewhere, so the five differ with where the two threads run.
///
/// The platform's runtime worker, its SQLite writer and the load generator wake one another
/// at every turn, and on a guest whose idle vCPU halts, waking a thread on the other vCPU goes
/// through the hypervisor. What that costs differs between machines of one kind, and moves the
/// platform's CPU per request with it (BENCHMARKS.md, session 27).
fn wakeup_cost() -> Value {
    const SAMPLES: usize = 5;
    const ROUND_TRIPS: u32 = 2_000;
    let mut cpu = Vec::with_capacity(SAMPLES);
    let mut wall = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let Some((c, w)) = ping_pong(ROUND_TRIPS) else {
            return json!({ "error": "no /proc/thread-self/schedstat, or the echo thread stopped" });
        };
        cpu.push(json!((c * 100.0).round() / 100.0));
        wall.push(json!((w * 100.0).round() / 100.0));
    }
    let spread = |values: &[Value]| {
        let (median, min, max) = median_min_max(values);
        json!({ "median": median, "min": min, "max": max })
    };
    json!({
        "samples": SAMPLES,
        "wakeups_per_sample": 2 * ROUND_TRIPS,
        "cpu_us_per_wakeup": spread(&cpu),
        "wall_us_per_wakeup": spread(&wall),
    })
}

/// This thread's CPU time so far, in ns.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `round_trips` hand-overs to a fresh thread and back: (CPU µs, wall µs) per wake-up.
fn ping_pong(round_trips: u32) -> Option<(f64, f64)> {
    let (to_echo, echo_rx) = std::sync::mpsc::channel::<()>();
    let (to_main, main_rx) = std::sync::mpsc::channel::<()>();
    let echo = std::thread::spawn(move || {
        let before = thread_cpu_ns();
        while echo_rx.recv().is_ok() {
            if to_main.send(()).is_err() {
                break;
            }
        }
        thread_cpu_ns()?.checked_sub(before?)
    });
    let before = thread_cpu_ns()?;
    let started = Instant::now();
    let mut done = 0u32;
    while done < round_trips && to_echo.send(()).is_ok() && main_rx.recv().is_ok() {
        done += 1;
    }
    let wall = started.elapsed();
    let main_cpu = thread_cpu_ns()?.checked_sub(before)?;
    drop(to_echo);
    let echo_cpu = echo.join().ok()??;
    if done < round_trips {
        return None;
    }
    let wakeups = f64::from(2 * round_trips);
    Some((
        (main_cpu + echo_cpu) as f64 / 1e3 / wakeups,
        wall.as_secs_f64() * 1e6 / wakeups,
    ))
}

/// The filesystem of `dir`, and two rates measured there: 4 KiB writes each followed by
/// fsync (what a commit costs) and one 32 MiB write with one fsync (what a photo stream
/// costs).
fn disk_rates(dir: &std::path::Path) -> Value {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fs = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map(|(_, kind)| kind);
    let measure = || -> std::io::Result<(f64, f64)> {
        let path = dir.join(format!("rollcall-bench-disk-{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            let block = [0x5au8; 4096];
            let started = Instant::now();
            let syncs = 64;
            for _ in 0..syncs {
                f.write_all(&block)?;
                f.sync_data()?;
            }
            let fsync_per_s = f64::from(syncs) / started.elapsed().as_secs_f64();
            let chunk = vec![0xa5u8; 1 << 20];
            let started = Instant::now();
            for _ in 0..32 {
                f.write_all(&chunk)?;
            }
            f.sync_all()?;
            let mib_per_s = 32.0 / started.elapsed().as_secs_f64();
            Ok((fsync_per_s, mib_per_s))
        })();
        let _ = std::fs::remove_file(&path);
        result
    };
    match measure() {
        Ok((fsync_per_s, mib_per_s)) => json!({
            "dir": dir.display().to_string(),
            "fs": fs,
            "fsync_4k_per_s": fsync_per_s.round(),
            "seq_write_mib_per_s": mib_per_s.round(),
        }),
        Err(e) => json!({"dir": dir.display().to_string(), "fs": fs, "error": e.to_string()}),
    }
}

/// The machine the run happened on: cores, CPU model, load average at the time.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu": model,
        "mem_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// An SVG chart of heartbeat latency (p50 solid, p99 dashed, µs, log scale) against
/// connections (log scale), one colour per target, from a heartbeat report's JSON.
pub fn heartbeat_svg(report: &Value) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 460.0, 70.0, 180.0, 40.0, 50.0);
    let rows = report["rows"].as_array().cloned().unwrap_or_default();
    let rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["mode"].as_str() == Some("closed"))
        .collect();
    let mut targets: Vec<String> = Vec::new();
    for r in &rows {
        if let Some(t) = r["target"].as_str()
            && !targets.iter().any(|x| x == t)
        {
            targets.push(t.to_owned());
        }
    }
    let xs: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["connections"].as_f64())
        .collect();
    let ys: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r["p50_us"].as_f64(), r["p99_us"].as_f64()])
        .flatten()
        .filter(|&v| v > 0.0)
        .collect();
    let (x0, x1) = bounds(&xs);
    let (y0, y1) = bounds(&ys);
    let px = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y.log10() - y0) / (y1 - y0) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">Heartbeat round-trip latency (closed loop): p50 solid, p99 dashed</text>\n"
    );
    // Axes with decade ticks.
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for (lo, hi, vertical) in [(x0, x1, true), (y0, y1, false)] {
        let mut d = lo.floor();
        while d <= hi.ceil() {
            let v = 10f64.powf(d);
            if d >= lo - 1e-9 && d <= hi + 1e-9 {
                if vertical {
                    let x = px(v);
                    let _ = writeln!(
                        s,
                        "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        h - bottom,
                        h - bottom + 16.0,
                        fmt_num(v)
                    );
                } else {
                    let y = py(v);
                    let _ = writeln!(
                        s,
                        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{} µs</text>",
                        w - right,
                        left - 6.0,
                        y + 4.0,
                        fmt_num(v)
                    );
                }
            }
            d += 1.0;
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">connections</text>",
        left + (w - left - right) / 2.0,
        h - 12.0
    );
    const COLOURS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    for (i, t) in targets.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for (key, dash) in [("p50_us", ""), ("p99_us", " stroke-dasharray=\"6 4\"")] {
            let mut pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r["target"].as_str() == Some(t.as_str()))
                .filter_map(|r| Some((r["connections"].as_f64()?, r[key].as_f64()?)))
                .filter(|&(x, y)| x > 0.0 && y > 0.0)
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                path.join(" ")
            );
            for &(x, y) in &pts {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                    px(x),
                    py(y)
                );
            }
        }
        let ly = top + 20.0 * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>",
            w - right + 12.0,
            ly + 4.0,
            w - right + 32.0,
            ly + 9.0,
            xml_escape(t)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// log10 bounds of positive values, padded to at least one decade.
fn bounds(vals: &[f64]) -> (f64, f64) {
    let logs: Vec<f64> = vals
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|v| v.log10())
        .collect();
    let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = (lo.floor(), hi.ceil());
    if hi - lo < 1.0 {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else {
        format!("{v}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rss: u64, ratio: f64, note: &str) -> Report {
        let mut r = Report::new("idle");
        r.rows.push(
            Row::new()
                .with("devices", 1000)
                .with("target", "rollcall")
                .with("rss_per_device_b", rss)
                .with("cpu_vs_floor", ratio)
                .with("met", rss <= 2048),
        );
        r.notes.push(note.to_owned());
        r
    }

    #[test]
    fn runs_fold_into_medians_with_the_range_of_what_varied() {
        let report = Report::aggregate(vec![
            run(2100, 1.9, "mosquitto skipped"),
            run(1900, 1.2, "mosquitto skipped"),
            run(2500, 1.4, "disk busy"),
            run(1950, 3.0, "mosquitto skipped"),
            run(2000, 1.3, "mosquitto skipped"),
        ]);
        assert_eq!(report.runs, 5);
        let row = &report.rows[0];
        // Odd count: the middle value itself, so integers stay integers.
        assert_eq!(row.get("rss_per_device_b"), Some(&json!(2000)));
        assert_eq!(row.get("cpu_vs_floor"), Some(&json!(1.4)));
        assert_eq!(row.get("devices"), Some(&json!(1000)));
        assert_eq!(row.get("target"), Some(&json!("rollcall")));
        // The first run missed (2100), the majority and the median met.
        assert_eq!(row.get("met"), Some(&json!(true)));
        // Only what varied has a range.
        let spread = &report.spreads[0];
        assert!(!spread.contains_key("devices"));
        assert_eq!(spread["rss_per_device_b"].min, json!(1900));
        assert_eq!(spread["rss_per_device_b"].max, json!(2500));
        assert_eq!(spread["cpu_vs_floor"].values.len(), 5);
        assert_eq!(spread["met"].values.len(), 5);
        assert_eq!(report.notes, ["mosquitto skipped", "disk busy"]);

        let table = report.table();
        assert!(table.contains("medians of 5 runs"), "{table}");
        assert!(table.contains("2000 [1900–2500]"), "{table}");
        let json = report.to_json();
        assert_eq!(json["runs"], 5);
        assert_eq!(json["spread"][0]["cpu_vs_floor"]["max"], 3.0);
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two_and_one_run_is_itself() {
        let report = Report::aggregate(vec![run(1000, 1.0, "a"), run(3000, 2.0, "a")]);
        assert_eq!(report.rows[0].get("rss_per_device_b"), Some(&json!(2000.0)));
        // One met, one missed: no majority.
        assert_eq!(report.rows[0].get("met"), Some(&json!(false)));
        let single = Report::aggregate(vec![run(1234, 1.1, "a")]);
        assert_eq!(single.runs, 1);
        assert!(single.spreads.is_empty());
        assert!(!single.table().contains("medians"));
    }

    #[test]
    fn the_fingerprint_names_kernel_clock_and_measured_disk_rates() {
        let m = fingerprint();
        assert!(m["cores"].as_u64().is_some_and(|c| c >= 1));
        assert!(m["kernel"].is_string(), "{m}");
        let disk = &m["disk"];
        assert!(
            disk["fsync_4k_per_s"].as_f64().is_some_and(|r| r > 0.0),
            "{m}"
        );
        assert!(
            disk["seq_write_mib_per_s"]
                .as_f64()
                .is_some_and(|r| r > 0.0),
            "{m}"
        );
        let wakeup = &m["wakeup"];
        assert_eq!(wakeup["samples"], 5, "{m}");
        for key in ["cpu_us_per_wakeup", "wall_us_per_wakeup"] {
            let (min, max) = (
                wakeup[key]["min"].as_f64().unwrap_or(-1.0),
                wakeup[key]["max"].as_f64().unwrap_or(-1.0),
            );
            assert!(min > 0.0 && min <= max, "{key}: {m}");
        }
    }
}
