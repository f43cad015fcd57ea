//! The dictionaries a worker's national data is coded in (work types, politics types,
//! nations), and the checks that tell, before anything is sent, why the national platform
//! would refuse a worker.
//!
//! The official lists are not public (UPLINK.md): the built-in entries below are defaults
//! (GB/T 4762 politics types, GB 3304 nation codes, the common construction trades), and
//! the operator adds or renames entries (`PUT /api/v1/dictionaries/{kind}/{code}`), stored
//! in the `dictionaries` table and merged over these.

use crate::store::{DictionaryEntry, WorkerNational};

pub const KINDS: &[&str] = &["work_type", "politics_type", "nation"];

const POLITICS_TYPES: &[(&str, &str)] = &[
    ("01", "中共党员"),
    ("02", "中共预备党员"),
    ("03", "共青团员"),
    ("12", "无党派人士"),
    ("13", "群众"),
];

const WORK_TYPES: &[(&str, &str)] = &[
    ("010", "砌筑工"),
    ("020", "钢筋工"),
    ("030", "架子工"),
    ("040", "混凝土工"),
    ("050", "模板工"),
    ("060", "机械设备安装工"),
    ("070", "通风工"),
    ("080", "安装起重工"),
    ("090", "安装钳工"),
    ("100", "电气设备安装调试工"),
    ("110", "管道工"),
    ("120", "变电安装工"),
    ("130", "建筑电工"),
    ("140", "司泵工"),
    ("150", "挖掘铲运和桩工机械司机"),
    ("160", "桩机操作工"),
    ("170", "起重信号工"),
    ("180", "建筑起重机械安装拆卸工"),
    ("190", "装饰装修工"),
    ("230", "防水工"),
    ("240", "木工"),
    ("260", "焊工"),
    ("270", "油漆工"),
    ("900", "其他"),
];

const NATIONS: &[(&str, &str)] = &[
    ("01", "汉族"),
    ("02", "蒙古族"),
    ("03", "回族"),
    ("04", "藏族"),
    ("05", "维吾尔族"),
    ("06", "苗族"),
    ("07", "彝族"),
    ("08", "壮族"),
    ("09", "布依族"),
    ("10", "朝鲜族"),
    ("11", "满族"),
    ("12", "侗族"),
    ("13", "瑶族"),
    ("14", "白族"),
    ("15", "土家族"),
    ("21", "畲族"),
];

/// The built-in entries of every kind merged with the operator's (theirs win), sorted.
pub fn merged(stored: &[DictionaryEntry]) -> Vec<DictionaryEntry> {
    let mut out: Vec<DictionaryEntry> = Vec::new();
    for (kind, entries) in [
        ("work_type", WORK_TYPES),
        ("politics_type", POLITICS_TYPES),
        ("nation", NATIONS),
    ] {
        for (code, name) in entries {
            out.push(DictionaryEntry {
                kind: kind.to_owned(),
                code: (*code).to_owned(),
                name: (*name).to_owned(),
            });
        }
    }
    for e in stored {
        match out
            .iter_mut()
            .find(|o| o.kind == e.kind && o.code == e.code)
        {
            Some(o) => o.name.clone_from(&e.name),
            None => out.push(e.clone()),
        }
    }
    out.sort_by(|a, b| (&a.kind, &a.code).cmp(&(&b.kind, &b.code)));
    out
}

/// Whether `code` is an entry of `kind`.
pub fn has(entries: &[DictionaryEntry], kind: &str, code: &str) -> bool {
    entries.iter().any(|e| e.kind == kind && e.code == code)
}

/// `YYYY-MM-DD` as the number `YYYYMMDD`, if it is a real date.
pub fn date_number(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        s[0..4].parse::<u32>().ok()?,
        s[5..7].parse::<u32>().ok()?,
        s[8..10].parse::<u32>().ok()?,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (d >= 1 && d <= days).then_some(y * 10_000 + m * 100 + d)
}

/// Whether the ID card has expired by `today` (`YYYYMMDD`); `长期` never expires.
pub fn id_card_expired(national: &WorkerNational, today: u32) -> bool {
    national
        .id_valid_to
        .as_deref()
        .and_then(date_number)
        .is_some_and(|to| to < today)
}

/// Why the national platform would refuse this worker's data, in the console's words;
/// empty when nothing is known to be wrong.
pub fn problems(national: Option<&WorkerNational>, has_face: bool, today: u32) -> Vec<String> {
    let mut out = Vec::new();
    if !has_face {
        out.push("缺少人脸照片（headImage）".to_owned());
    }
    match national {
        None => out.push("缺少身份证签发机关（grantOrg）".to_owned()),
        Some(n) => {
            if n.grant_org.as_deref().is_none_or(str::is_empty) {
                out.push("缺少身份证签发机关（grantOrg）".to_owned());
            }
            if id_card_expired(n, today) {
                out.push(format!(
                    "身份证已过期（有效期至 {}）",
                    n.id_valid_to.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn national(valid_to: Option<&str>, grant_org: Option<&str>) -> WorkerNational {
        WorkerNational {
            person_id: 1,
            grant_org: grant_org.map(str::to_owned),
            id_valid_to: valid_to.map(str::to_owned),
            ..WorkerNational::default()
        }
    }

    #[test]
    fn an_expired_card_and_a_missing_authority_are_problems() {
        let ok = national(Some("2030-01-01"), Some("杭州市公安局西湖分局"));
        assert!(problems(Some(&ok), true, 20_260_101).is_empty());
        let expired = national(Some("2025-12-31"), Some("杭州市公安局"));
        assert!(id_card_expired(&expired, 20_260_101));
        assert_eq!(
            problems(Some(&expired), true, 20_260_101),
            vec!["身份证已过期（有效期至 2025-12-31）".to_owned()]
        );
        let forever = national(Some("长期"), Some("杭州市公安局"));
        assert!(!id_card_expired(&forever, 99_991_231));
        assert_eq!(problems(None, false, 20_260_101).len(), 2);
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(date_number("2024-02-29"), Some(20_240_229));
        assert_eq!(date_number("2023-02-29"), None);
        assert_eq!(date_number("2024-13-01"), None);
        assert_eq!(date_number("20240101"), None);
    }

    #[test]
    fn the_operators_entries_extend_and_rename_the_defaults() {
        let stored = vec![
            DictionaryEntry {
                kind: "work_type".into(),
                code: "900".into(),
                name: "其他工种".into(),
            },
            DictionaryEntry {
                kind: "work_type".into(),
                code: "999".into(),
                name: "测量工".into(),
            },
        ];
        let all = merged(&stored);
        assert!(has(&all, "work_type", "999"));
        assert!(has(&all, "politics_type", "13"));
        let other = all.iter().find(|e| e.code == "900").unwrap();
        assert_eq!(other.name, "其他工种");
    }
}
