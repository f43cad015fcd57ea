//! What each simulated terminal is and what it sends: the mix of kinds (`--kind`,
//! `--kinds face=10,mobile=2,gate=4,collector=1`), where mobile terminals stand relative to
//! the project's fence (`--site`, `--fence-radius`, `--outside-fence-share`), and the record
//! or enrolment each kind makes (the SDK's typed constructors, [`AttendanceRecord`] and
//! [`CollectedPerson`]).

use std::str::FromStr;

use rollcall_device::backoff::Rng;
use rollcall_device::photo::sample::{FACE_JPEG, SMALL_JPEG, iris_bmp};
use rollcall_device::{AttendanceRecord, CollectedPerson, GateDirection, TerminalKind};
use rollcall_platform::rules::geo::{Fence, Point};
use rollcall_protocol::params::{Coordinate, QrCodeInfo};

/// The terminals of a run, by kind, in the order given. `gate=N` is N gates alternating
/// in, out, in, … (so a site has both); `gate-in=N` / `gate-out=N` choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMix(pub Vec<TerminalKind>);

impl FromStr for KindMix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut all = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, count) = match item.split_once('=') {
                Some((name, n)) => {
                    let n = n.trim().parse::<usize>().map_err(|_| {
                        format!("{item:?}: the count after = must be a whole number / 数量应为整数")
                    })?;
                    (name.trim(), n)
                }
                None => (item, 1),
            };
            if name == "gate" {
                all.extend((0..count).map(|i| {
                    TerminalKind::Gate(if i % 2 == 0 {
                        GateDirection::In
                    } else {
                        GateDirection::Out
                    })
                }));
            } else {
                let kind: TerminalKind = name.parse().map_err(|_| {
                    format!(
                        "unknown terminal kind {name:?}: face, iris, mobile, qr, gate, gate-in, gate-out, collector / 未知终端类型"
                    )
                })?;
                all.extend(std::iter::repeat_n(kind, count));
            }
        }
        if all.is_empty() {
            return Err("at least one terminal is needed / 至少需要一台终端".into());
        }
        Ok(KindMix(all))
    }
}

/// A place: `longitude,latitude` in degrees (GCJ-02 unless the project says WGS-84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site(pub Point);

impl FromStr for Site {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected longitude,latitude / 应为 经度,纬度");
        let (lng, lat) = s.split_once(',').ok_or_else(bad)?;
        let longitude: f64 = lng.trim().parse().map_err(|_| bad())?;
        let latitude: f64 = lat.trim().parse().map_err(|_| bad())?;
        if !(-180.0..=180.0).contains(&longitude) || !(-90.0..=90.0).contains(&latitude) {
            return Err(bad());
        }
        Ok(Site(Point {
            longitude,
            latitude,
        }))
    }
}

/// Where a mobile terminal takes its records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// Within 60 % of the fence's radius from its centre.
    Inside,
    /// Between 2 and 3 radii from the centre.
    Outside,
}

/// One simulated terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminal {
    pub sn: String,
    pub kind: TerminalKind,
    /// Mobile terminals only.
    pub placement: Option<Placement>,
}

/// The terminals of a run: serial numbers `PREFIX0001`, … in the mix's order; of the mobile
/// terminals, `outside_share` (rounded) stand outside the fence, spread evenly among them.
pub fn plan(mix: &KindMix, prefix: &str, outside_share: f64) -> Vec<Terminal> {
    let mut mobile = 0usize;
    mix.0
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let placement = (kind == TerminalKind::Mobile).then(|| {
                let k = mobile as f64;
                mobile += 1;
                // The k-th mobile terminal is outside when the rounded running share steps up.
                if ((k + 1.0) * outside_share).round() > (k * outside_share).round() {
                    Placement::Outside
                } else {
                    Placement::Inside
                }
            });
            Terminal {
                sn: format!("{prefix}{:04}", i + 1),
                kind,
                placement,
            }
        })
        .collect()
}

/// The project's fence: a circle of `radius` metres around `site` (admin API JSON).
pub fn fence(site: Site, radius: f64) -> serde_json::Value {
    serde_json::to_value(Fence::Circle {
        center: site.0,
        radius_meters: radius,
    })
    .unwrap_or_default()
}

/// A point at `meters` from `center` on `bearing` (radians from north), on a local flat
/// approximation — good to well under a metre at a site's scale.
fn offset(center: Point, meters: f64, bearing: f64) -> Coordinate {
    const M_PER_DEG_LAT: f64 = 111_320.0;
    let dlat = meters * bearing.cos() / M_PER_DEG_LAT;
    let dlng = meters * bearing.sin() / (M_PER_DEG_LAT * center.latitude.to_radians().cos());
    Coordinate {
        longitude: center.longitude + dlng,
        latitude: center.latitude + dlat,
    }
}

/// Where a record of a terminal placed `placement` is taken: a fresh random point each time.
pub fn position(placement: Placement, site: Site, radius: f64, rng: &mut Rng) -> Coordinate {
    let bearing = rng.next_f64() * std::f64::consts::TAU;
    let meters = match placement {
        Placement::Inside => rng.next_f64() * 0.6 * radius,
        Placement::Outside => (2.0 + rng.next_f64()) * radius,
    };
    offset(site.0, meters, bearing)
}

/// The record a terminal of `kind` takes of `person` now (`None` for a collector).
pub fn record(
    terminal: &Terminal,
    person: String,
    now_ms: i64,
    site: Site,
    radius: f64,
    rng: &mut Rng,
) -> Option<AttendanceRecord> {
    let photo = || SMALL_JPEG.to_vec();
    Some(match terminal.kind {
        TerminalKind::Face | TerminalKind::Gate(_) => {
            AttendanceRecord::face(person, now_ms, Some(photo()))
        }
        TerminalKind::Iris => {
            let info = format!("SIM-IRIS:{}:{person}", terminal.sn);
            AttendanceRecord::iris(person, now_ms, info)
        }
        TerminalKind::Mobile => {
            let at = position(
                terminal.placement.unwrap_or(Placement::Inside),
                site,
                radius,
                rng,
            );
            AttendanceRecord::mobile(person, now_ms, at, Some(photo()))
        }
        TerminalKind::Qr => {
            let code = QrCodeInfo {
                r#type: QrCodeInfo::PERSON_CODE,
                code_color: Some("green".into()),
                code_value: Some(format!("RC-PERSON-{person}")),
                city_code: Some("330100".into()),
            };
            AttendanceRecord::qr(person, now_ms, code).with_face(photo())
        }
        TerminalKind::Collector => return None,
    })
}

/// The `n`-th enrolment of a collector: an ID card read (number `idcard`), the face photo
/// that passes the enrolment face rules, the chip photo, and both irises.
pub fn collected(idcard: String, n: u64) -> CollectedPerson {
    let mut p = CollectedPerson::new(idcard, format!("采集工人{n:04}"), FACE_JPEG.to_vec());
    p.nation = Some("汉".into());
    p.address = Some("浙江省杭州市西湖区模拟路 1 号".into());
    p.issuing_authority = Some("杭州市公安局西湖分局".into());
    p.valid_from = Some("20200101".into());
    p.valid_to = Some("长期".into());
    p.id_card_photo = Some(SMALL_JPEG.to_vec());
    p.iris_left = Some(iris_bmp(0));
    p.iris_right = Some(iris_bmp(12));
    p.face_match_score = Some(0.92);
    p
}

/// `face 3, mobile 2 (1 outside the fence), gate-in 1, …`: the mix, for the summary.
pub fn describe(terminals: &[Terminal]) -> String {
    let mut parts: Vec<(String, usize, usize)> = Vec::new();
    for t in terminals {
        let name = t.kind.to_string();
        let outside = usize::from(t.placement == Some(Placement::Outside));
        match parts.iter_mut().find(|(n, _, _)| *n == name) {
            Some(p) => {
                p.1 += 1;
                p.2 += outside;
            }
            None => parts.push((name, 1, outside)),
        }
    }
    parts
        .into_iter()
        .map(|(name, n, outside)| {
            if name == "mobile" {
                format!("{name} {n} ({outside} outside the fence / 围栏外)")
            } else {
                format!("{name} {n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_platform::rules::geo::distance_meters;

    #[test]
    fn a_mix_lists_every_kind_and_alternates_gates() {
        let mix: KindMix = "face=2, gate=3,mobile,collector=1,gate-out=1"
            .parse()
            .unwrap();
        let names: Vec<String> = mix.0.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            names,
            [
                "face",
                "face",
                "gate-in",
                "gate-out",
                "gate-in",
                "mobile",
                "collector",
                "gate-out"
            ]
        );
        assert!("face=x".parse::<KindMix>().is_err());
        assert!("palm=2".parse::<KindMix>().is_err());
        assert!("face=0".parse::<KindMix>().is_err());
    }

    #[test]
    fn the_outside_share_picks_that_many_mobile_terminals() {
        let outside = |n: usize, share: f64| {
            let mix = KindMix(vec![TerminalKind::Mobile; n]);
            plan(&mix, "S", share)
                .iter()
                .filter(|t| t.placement == Some(Placement::Outside))
                .count()
        };
        assert_eq!(outside(2, 0.5), 1);
        assert_eq!(outside(10, 0.3), 3);
        assert_eq!(outside(4, 0.0), 0);
        assert_eq!(outside(3, 1.0), 3);
        let t = plan(&"face,mobile".parse().unwrap(), "SIM", 0.0);
        assert_eq!((t[0].sn.as_str(), t[0].placement), ("SIM0001", None));
        assert_eq!(t[1].placement, Some(Placement::Inside));
    }

    #[test]
    fn inside_and_outside_positions_fall_where_the_platform_will_judge_them() {
        let site: Site = "120.15,30.28".parse().unwrap();
        let fence: Fence = serde_json::from_value(fence(site, 500.0)).unwrap();
        let mut rng = Rng::seeded(7);
        for _ in 0..1000 {
            let p = |c: Coordinate| Point {
                longitude: c.longitude,
                latitude: c.latitude,
            };
            let inside = p(position(Placement::Inside, site, 500.0, &mut rng));
            assert!(fence.contains(inside), "{inside:?}");
            assert!(distance_meters(site.0, inside) <= 301.0);
            let outside = p(position(Placement::Outside, site, 500.0, &mut rng));
            assert!(!fence.contains(outside), "{outside:?}");
            assert!(distance_meters(site.0, outside) >= 999.0);
        }
    }

    #[test]
    fn each_kind_sends_its_own_record() {
        let site: Site = "120.15,30.28".parse().unwrap();
        let mut rng = Rng::seeded(1);
        let terminals = plan(
            &"face,iris,mobile,qr,gate,collector".parse().unwrap(),
            "K",
            0.0,
        );
        let params: Vec<_> = terminals
            .iter()
            .map(|t| record(t, "42".into(), 1, site, 500.0, &mut rng).map(|r| r.to_param()))
            .collect();
        assert_eq!(params[0].as_ref().unwrap().r#type, 1);
        assert!(params[1].as_ref().unwrap().iris_info.is_some());
        let mobile = params[2].as_ref().unwrap();
        assert_eq!(mobile.r#type, 64);
        assert!(mobile.coordinate.is_some());
        let qr = params[3].as_ref().unwrap();
        assert_eq!((qr.r#type, qr.bit_type), (16, Some(17)));
        assert_eq!(qr.qr_code_info.as_ref().unwrap().r#type, 1);
        assert_eq!(
            params[4].as_ref().unwrap().r#type,
            1,
            "a gate records faces"
        );
        assert!(params[5].is_none(), "a collector takes no attendance");
        assert_eq!(
            collected("33010619850315123X".into(), 1).validate(409_600),
            Ok(())
        );
        assert_eq!(
            describe(&plan(&"mobile=2,gate=2".parse().unwrap(), "D", 0.5)),
            "mobile 2 (1 outside the fence / 围栏外), gate-in 1, gate-out 1"
        );
    }
}
