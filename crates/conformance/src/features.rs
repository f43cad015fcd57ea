//! Declared features: what the system under test claims to support. They select the cases
//! (a case needing an undeclared feature is "not applicable").

use std::collections::BTreeSet;
use std::str::FromStr;

use rollcall_protocol::ApiCode;
use serde::Serialize;

/// A kind of terminal (`docs/DEVICES.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Face,
    Iris,
    Mobile,
    Qr,
    Gate,
    Collector,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Face,
        Kind::Iris,
        Kind::Mobile,
        Kind::Qr,
        Kind::Gate,
        Kind::Collector,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Face => "face",
            Kind::Iris => "iris",
            Kind::Mobile => "mobile",
            Kind::Qr => "qr",
            Kind::Gate => "gate",
            Kind::Collector => "collector",
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                format!("unknown device kind {s:?} (face, iris, mobile, qr, gate, collector)")
            })
    }
}

/// What the system under test declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Features {
    /// The apicodes it implements.
    pub apicodes: BTreeSet<String>,
    /// The device kinds it plays (device mode) or serves (platform mode).
    pub kinds: BTreeSet<Kind>,
    /// Encrypted responses (ZJ-JWE-02).
    pub jwe: bool,
}

impl Default for Features {
    /// Every apicode of the standard, face terminals, no JWE.
    fn default() -> Self {
        Features {
            apicodes: ApiCode::ALL
                .iter()
                .filter(|a| **a != ApiCode::CollectPerson)
                .map(|a| a.as_str().to_owned())
                .collect(),
            kinds: BTreeSet::from([Kind::Face]),
            jwe: false,
        }
    }
}

impl Features {
    /// Features from the command line: comma-separated apicodes (empty: the standard's) and
    /// kinds (empty: face). Declaring the collector kind declares X_COLLECT_PERSON.
    pub fn parse(apicodes: &str, kinds: &str, jwe: bool) -> Result<Features, String> {
        let mut f = Features {
            jwe,
            ..Features::default()
        };
        if !kinds.trim().is_empty() {
            f.kinds = kinds
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(Kind::from_str)
                .collect::<Result<_, _>>()?;
        }
        if !apicodes.trim().is_empty() {
            f.apicodes = BTreeSet::new();
            for a in apicodes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let api: ApiCode = a.parse().map_err(|_| format!("unknown apicode {a:?}"))?;
                f.apicodes.insert(api.as_str().to_owned());
            }
        }
        if f.kinds.contains(&Kind::Collector) {
            f.apicodes
                .insert(ApiCode::CollectPerson.as_str().to_owned());
        }
        Ok(f)
    }

    pub fn has_api(&self, api: ApiCode) -> bool {
        self.apicodes.contains(api.as_str())
    }

    pub fn has_kind(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}
