//! The catalogue covers `docs/PROTOCOL.md`: every rule id of the document is checked by a
//! case or listed as untestable with a reason — a new rule without either fails the build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rollcall_conformance::catalogue::{CASES, Need, UNTESTABLE, known_apicode};

/// The rules the document defines: its `<a id="ZJ-…">` anchors (as `rule_index.rs` reads them).
fn defined_rules() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md"),
    )
    .expect("docs/PROTOCOL.md");
    doc.split("<a id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|id| id.starts_with("ZJ-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_rule_has_a_case_or_a_reason() {
    let rules = defined_rules();
    assert!(
        rules.len() > 100,
        "the document's rules were read ({})",
        rules.len()
    );
    let covered: BTreeSet<String> = CASES
        .iter()
        .flat_map(|c| c.rules.iter().map(|r| (*r).to_owned()))
        .collect();
    let excused: BTreeSet<String> = UNTESTABLE.iter().map(|(r, _)| (*r).to_owned()).collect();
    let missing: Vec<&String> = rules
        .iter()
        .filter(|r| !covered.contains(*r) && !excused.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "rules with no case and no reason: {missing:?}"
    );
    for (rule, why) in UNTESTABLE {
        assert!(
            why.trim().len() >= 20,
            "{rule} is marked untestable without a real reason"
        );
        assert!(
            rules.contains(*rule),
            "{rule} is marked untestable but the document has no such rule"
        );
        assert!(
            !covered.contains(*rule),
            "{rule} is both checked by a case and marked untestable"
        );
    }
}

#[test]
fn cases_name_existing_rules_and_are_well_formed() {
    let rules = defined_rules();
    let mut ids = HashSet::new();
    for c in CASES {
        assert!(ids.insert(c.id), "case id {} twice", c.id);
        assert!(!c.rules.is_empty(), "{} names no rule", c.id);
        assert!(
            !c.scenario.is_empty() && !c.title.is_empty() && !c.title_zh.is_empty(),
            "{} is described",
            c.id
        );
        for r in c.rules {
            assert!(
                rules.contains(*r),
                "{} names {r}, which docs/PROTOCOL.md does not define",
                c.id
            );
        }
        for n in c.needs {
            if let Need::Api(a) = n {
                assert!(known_apicode(a), "{} needs unknown apicode {a}", c.id);
            }
        }
    }
}
