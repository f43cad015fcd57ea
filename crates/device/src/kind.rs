//! The kinds of terminal the standard names (DEVICES.md: face §3, iris §4, mobile §5, QR §6,
//! the gate that counts people in or out, and the collection device of Appendix 1 §1), and what
//! each one sends.
//!
//! The wire carries no kind and no direction: C_SIGN_IN says only *how* a person was
//! recognised (`type`/`bitType`). The platform learns a terminal's kind and a gate's
//! direction when an operator registers the device (admin API `kind`, `direction`), and
//! stamps every record of a gate with that direction. So a gate's record is a face record
//! ([`crate::AttendanceRecord::face`]), and [`TerminalKind::admin_kind`] /
//! [`TerminalKind::admin_direction`] are what the operator registers.

use std::fmt;
use std::str::FromStr;

/// Which way a gate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateDirection {
    /// Entrance (进).
    In,
    /// Exit (出).
    Out,
}

impl GateDirection {
    /// The admin API's `direction`: `in` or `out`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GateDirection::In => "in",
            GateDirection::Out => "out",
        }
    }
}

/// One kind of terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminalKind {
    /// Face recognition terminal: `type` 1 with a capture photo.
    Face,
    /// Iris terminal: `type` 32 with `irisInfo`.
    Iris,
    /// Mobile attendance (an app on a phone): `type` 64 with a face capture and the phone's
    /// `coordinate`, which the platform compares with the project's fence.
    Mobile,
    /// QR terminal: `type` 16 with `qrCodeInfo` (a QR code alone is auxiliary; with a face
    /// capture the record is composite, `bitType` 17).
    Qr,
    /// A gate (闸机) recognising faces and counting people in or out.
    Gate(GateDirection),
    /// A collection device (采集设备): enrols workers with `X_COLLECT_PERSON`
    /// ([`crate::collect::Collector`]) and takes no attendance.
    Collector,
}

impl TerminalKind {
    /// The admin API's `kind` of the device: `face`, `iris`, `mobile`, `qr`, `gate` or
    /// `collector`.
    pub const fn admin_kind(self) -> &'static str {
        match self {
            TerminalKind::Face => "face",
            TerminalKind::Iris => "iris",
            TerminalKind::Mobile => "mobile",
            TerminalKind::Qr => "qr",
            TerminalKind::Gate(_) => "gate",
            TerminalKind::Collector => "collector",
        }
    }

    /// The admin API's `direction`: a gate's; `None` (the platform's `both`) otherwise.
    pub const fn admin_direction(self) -> Option<&'static str> {
        match self {
            TerminalKind::Gate(d) => Some(d.as_str()),
            _ => None,
        }
    }

    /// Whether the terminal takes attendance (every kind but the collector).
    pub const fn takes_attendance(self) -> bool {
        !matches!(self, TerminalKind::Collector)
    }
}

impl fmt::Display for TerminalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TerminalKind::Gate(d) => write!(f, "gate-{}", d.as_str()),
            k => f.write_str(k.admin_kind()),
        }
    }
}

/// A kind name that is not one of [`TerminalKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown terminal kind {0:?} (face, iris, mobile, qr, gate-in, gate-out, collector) / 未知终端类型"
)]
pub struct UnknownKind(pub String);

impl FromStr for TerminalKind {
    type Err = UnknownKind;

    /// `face`, `iris`, `mobile`, `qr`, `gate-in`, `gate-out`, `collector` (the
    /// [`Display`](fmt::Display) form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "face" => TerminalKind::Face,
            "iris" => TerminalKind::Iris,
            "mobile" => TerminalKind::Mobile,
            "qr" => TerminalKind::Qr,
            "gate-in" => TerminalKind::Gate(GateDirection::In),
            "gate-out" => TerminalKind::Gate(GateDirection::Out),
            "collector" => TerminalKind::Collector,
            other => return Err(UnknownKind(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_map_to_the_admin_api() {
        for k in [
            TerminalKind::Face,
            TerminalKind::Iris,
            TerminalKind::Mobile,
            TerminalKind::Qr,
            TerminalKind::Gate(GateDirection::In),
            TerminalKind::Gate(GateDirection::Out),
            TerminalKind::Collector,
        ] {
            assert_eq!(k.to_string().parse::<TerminalKind>(), Ok(k));
        }
        let gate_out = TerminalKind::Gate(GateDirection::Out);
        assert_eq!(gate_out.admin_kind(), "gate");
        assert_eq!(gate_out.admin_direction(), Some("out"));
        assert_eq!(TerminalKind::Mobile.admin_direction(), None);
        assert!(!TerminalKind::Collector.takes_attendance());
        assert!("fingerprint".parse::<TerminalKind>().is_err());
    }
}
