//! Results and reports: JSON (`--json`), a self-contained HTML page (`--html`) a vendor can
//! hand to an operator, and JUnit XML (`--junit`) for CI systems.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::catalogue::{Case, Side};
use crate::evidence::{Dir, Entry};
use crate::features::Features;
use crate::verdict::Verdict;

/// One check inside a case: the rule it tests and whether it held.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub rule: String,
    pub passed: bool,
    pub text: String,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    pub title_zh: String,
    pub rules: Vec<String>,
    pub verdict: Verdict,
    /// Why the verdict (the failed checks, what was inconclusive, the error).
    pub reason: String,
    pub checks: Vec<Check>,
    pub evidence: Vec<Entry>,
    pub duration_ms: u64,
}

impl CaseResult {
    /// A result without a run (not applicable, or an error before it started).
    pub fn without_run(case: &Case, verdict: Verdict, reason: String) -> CaseResult {
        CaseResult {
            id: case.id.to_owned(),
            title: case.title.to_owned(),
            title_zh: case.title_zh.to_owned(),
            rules: case.rules.iter().map(|r| (*r).to_owned()).collect(),
            verdict,
            reason,
            checks: Vec::new(),
            evidence: Vec::new(),
            duration_ms: 0,
        }
    }

    /// The rules of the checks that failed.
    pub fn failed_rules(&self) -> BTreeSet<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule.clone())
            .collect()
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub tool_version: String,
    pub side: Side,
    /// What was tested (addresses, or the listening addresses in device mode).
    pub target: String,
    pub features: Features,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub summary: BTreeMap<Verdict, usize>,
    pub results: Vec<CaseResult>,
    /// Rule → verdict definitions, so the report explains itself.
    pub verdicts: BTreeMap<Verdict, &'static str>,
}

impl Report {
    pub fn new(side: Side, target: String, features: Features, results: Vec<CaseResult>) -> Report {
        let mut summary: BTreeMap<Verdict, usize> = Verdict::ALL.iter().map(|v| (*v, 0)).collect();
        for r in &results {
            *summary.entry(r.verdict).or_default() += 1;
        }
        let now = rollcall_protocol::time::now_ms();
        let started = results
            .first()
            .and_then(|r| r.evidence.first())
            .map_or(now, |e| e.wall_ms);
        Report {
            tool: "rollcall-conformance".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            side,
            target,
            features,
            started_ms: started,
            finished_ms: now,
            summary,
            results,
            verdicts: Verdict::ALL.iter().map(|v| (*v, v.definition())).collect(),
        }
    }

    /// True when any case failed: the exit status is then 1.
    pub fn any_failed(&self) -> bool {
        self.results.iter().any(|r| r.verdict == Verdict::Fail)
    }

    /// Every rule a failed check names, over the whole run.
    pub fn failed_rules(&self) -> BTreeSet<String> {
        self.results
            .iter()
            .flat_map(CaseResult::failed_rules)
            .collect()
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.summary.get(&v).copied().unwrap_or(0)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A one-screen text summary for the console.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let _ = writeln!(
                out,
                "{:<14} {:<12} {}  [{}]",
                r.verdict.as_str().to_uppercase(),
                r.id,
                r.title_zh,
                r.rules.join(" ")
            );
            if matches!(
                r.verdict,
                Verdict::Fail | Verdict::Inconclusive | Verdict::Error
            ) {
                for line in r.reason.lines() {
                    let _ = writeln!(out, "               └ {line}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\n通过 pass {} · 不通过 fail {} · 无法判定 inconclusive {} · 不适用 n/a {} · 错误 error {}",
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::Inconclusive),
            self.count(Verdict::NotApplicable),
            self.count(Verdict::Error)
        );
        let failed = self.failed_rules();
        if !failed.is_empty() {
            let list: Vec<&str> = failed.iter().map(String::as_str).collect();
            let _ = writeln!(out, "违反的规则 / rules broken: {}", list.join(", "));
        }
        out
    }

    /// JUnit XML: one testcase per case; fail → `<failure>`, error → `<error>`,
    /// inconclusive and not applicable → `<skipped>`.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let time = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        let total: u64 = self.results.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            out,
            "<testsuites name=\"rollcall-conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            self.results.len(),
            self.count(Verdict::Fail),
            self.count(Verdict::Error),
            self.count(Verdict::Inconclusive) + self.count(Verdict::NotApplicable),
            time(total)
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"conformance.{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            self.side.as_str(),
            self.results.len(),
            self.count(Verdict::Fail),
            self.count(Verdict::Error),
            self.count(Verdict::Inconclusive) + self.count(Verdict::NotApplicable),
            time(total)
        );
        for r in &self.results {
            let _ = write!(
                out,
                "    <testcase classname=\"conformance.{}\" name=\"{} {}\" time=\"{}\">",
                self.side.as_str(),
                xml(&r.id),
                xml(&r.title),
                time(r.duration_ms)
            );
            let msg = xml(&r.reason);
            match r.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    let rules: Vec<String> = r.failed_rules().into_iter().collect();
                    let _ = write!(
                        out,
                        "<failure message=\"{}\" type=\"{}\">{msg}</failure>",
                        xml(&first_line(&r.reason)),
                        xml(&rules.join(" "))
                    );
                }
                Verdict::Error => {
                    let _ = write!(
                        out,
                        "<error message=\"{}\">{msg}</error>",
                        xml(&first_line(&r.reason))
                    );
                }
                Verdict::Inconclusive | Verdict::NotApplicable => {
                    let _ = write!(
                        out,
                        "<skipped message=\"{}: {}\"/>",
                        r.verdict.as_str(),
                        xml(&first_line(&r.reason))
                    );
                }
            }
            let mut log = String::new();
            for e in &r.evidence {
                let _ = writeln!(log, "{}", evidence_line(e));
            }
            if !log.is_empty() {
                let _ = write!(out, "<system-out>{}</system-out>", xml(&log));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// A self-contained HTML page (inline style, no scripts, no external resources).
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(64 * 1024);
        let side = match self.side {
            Side::Platform => "平台一致性测试报告 / Platform conformance report",
            Side::Device => "终端一致性测试报告 / Terminal conformance report",
        };
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{side}</title><style>{STYLE}</style></head><body>\n<h1>{side}</h1>\n"
        );
        let _ = write!(
            h,
            "<table class=\"meta\"><tr><th>被测对象 / target</th><td>{}</td></tr><tr><th>工具 / tool</th><td>{} {}</td></tr><tr><th>开始 / started</th><td>{}</td></tr><tr><th>结束 / finished</th><td>{}</td></tr><tr><th>声明的功能 / declared features</th><td>apicodes: {}<br>kinds: {}<br>JWE: {}</td></tr></table>",
            esc(&self.target),
            esc(&self.tool),
            esc(&self.tool_version),
            beijing(self.started_ms),
            beijing(self.finished_ms),
            esc(&self
                .features
                .apicodes
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")),
            esc(&self
                .features
                .kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
            if self.features.jwe { "yes" } else { "no" }
        );
        h.push('\n');
        h.push_str("<h2>结果 / Summary</h2><p class=\"summary\">");
        for v in Verdict::ALL {
            let _ = write!(
                h,
                "<span class=\"v {}\">{} {} · {}</span> ",
                v.as_str(),
                v.zh(),
                v.as_str(),
                self.count(v)
            );
        }
        h.push_str("</p>\n");
        let failed = self.failed_rules();
        if failed.is_empty() {
            h.push_str("<p>没有发现违反规则之处。 / No rule was found broken.</p>\n");
        } else {
            h.push_str("<p><b>违反的规则 / Rules broken:</b> ");
            for r in &failed {
                let _ = write!(h, "<code>{}</code> ", esc(r));
            }
            h.push_str("</p>\n");
        }
        h.push_str("<table class=\"cases\"><tr><th>用例 / case</th><th>标题 / title</th><th>规则 / rules</th><th>结论 / verdict</th></tr>\n");
        for r in &self.results {
            let _ = write!(
                h,
                "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}<br><small>{}</small></td><td>{}</td><td class=\"v {}\">{} {}</td></tr>",
                esc(&r.title_zh),
                esc(&r.title),
                esc(&r.rules.join(" ")),
                r.verdict.as_str(),
                r.verdict.zh(),
                r.verdict.as_str(),
                id = esc(&r.id),
            );
            h.push('\n');
        }
        h.push_str("</table>\n<h2>详情 / Details</h2>\n");
        for r in &self.results {
            let _ = write!(
                h,
                "<section id=\"{id}\"><h3>{id} — {} <span class=\"v {}\">{} {}</span></h3><p>{}</p>",
                esc(&r.title_zh),
                r.verdict.as_str(),
                r.verdict.zh(),
                r.verdict.as_str(),
                esc(&r.title),
                id = esc(&r.id)
            );
            if !r.reason.is_empty() {
                let _ = write!(h, "<pre class=\"reason\">{}</pre>", esc(&r.reason));
            }
            if !r.checks.is_empty() {
                h.push_str("<ul class=\"checks\">");
                for c in &r.checks {
                    let _ = write!(
                        h,
                        "<li class=\"{}\"><code>{}</code> {}</li>",
                        if c.passed { "ok" } else { "bad" },
                        esc(&c.rule),
                        esc(&c.text)
                    );
                }
                h.push_str("</ul>");
            }
            if !r.evidence.is_empty() {
                let _ = write!(
                    h,
                    "<details><summary>证据 / evidence ({} entries)</summary><pre class=\"evidence\">",
                    r.evidence.len()
                );
                for e in &r.evidence {
                    let _ = writeln!(h, "{}", esc(&evidence_line(e)));
                }
                h.push_str("</pre></details>");
            }
            h.push_str("</section>\n");
        }
        h.push_str("<h2>结论的含义 / What each verdict means</h2><dl>");
        for v in Verdict::ALL {
            let _ = write!(
                h,
                "<dt class=\"v {}\">{} {}</dt><dd>{}</dd>",
                v.as_str(),
                v.zh(),
                v.as_str(),
                esc(v.definition())
            );
        }
        h.push_str("</dl>\n<p><small>规则编号见 docs/PROTOCOL.md。/ Rule ids refer to docs/PROTOCOL.md.</small></p></body></html>\n");
        h
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}.v{padding:.1em .4em;border-radius:.3em}.pass{background:#d7f5dd}.fail{background:#f9d0d0}.inconclusive{background:#fff0c2}.not_applicable{background:#eee}.error{background:#f3d4f7}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}li.bad{color:#a00}li.ok{color:#060}section{border-top:1px solid #ddd;margin-top:1em}";

fn evidence_line(e: &Entry) -> String {
    let arrow = match e.dir {
        Dir::Sent => "→",
        Dir::Received => "←",
        Dir::Note => "·",
    };
    format!(
        "+{:>7}ms {} {} {} {}",
        e.at_ms,
        beijing(e.wall_ms),
        arrow,
        e.channel,
        e.text
    )
}

fn beijing(ms: i64) -> String {
    rollcall_protocol::time::Timestamp::from_epoch_ms(ms).to_wire()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// HTML text escaping.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// XML escaping, dropping characters XML 1.0 cannot carry.
pub fn xml(s: &str) -> String {
    esc(&s
        .chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || *c >= ' ')
        .collect::<String>())
}
