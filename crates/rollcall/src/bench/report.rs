//! What a bench run reports: rows of named values, printed as a table on stdout, written as
//! JSON (`--json FILE`), and for the heartbeat scenario drawn as an SVG chart of latency
//! against connections (`--svg FILE`) by a small hand-written SVG writer that reads the same
//! JSON.

use std::fmt::Write as _;

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

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// A scenario's result.
#[derive(Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub rows: Vec<Row>,
    /// Free-text remarks (what was skipped and why, the machine's state).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_owned(),
            ..Report::default()
        }
    }

    /// The whole report, machine included, as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "machine": machine(),
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
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
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                cols.iter()
                    .map(|c| {
                        r.0.iter()
                            .find(|(k, _)| k == c)
                            .map_or(String::new(), |(_, v)| cell(v))
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
