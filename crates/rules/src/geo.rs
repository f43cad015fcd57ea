//! Electronic fences (电子围栏) and the point-in-fence test behind the `outside_fence` flag of
//! mobile attendance (ZJ-SIGNIN-07, ZJ-SIGNIN-08, RC-DEV-20).
//!
//! A project's fence is JSON in one of the two forms of docs/PRODUCT.md (RC-PROD-09, `POST /projects`):
//! `{"center": {"longitude", "latitude"}, "radiusMeters"}` or `{"polygon": [[lng, lat], …]}`.
//!
//! Key decisions:
//!
//! - **No datum conversion.** The project's `coordinateSystem` ([`CoordinateSystem`], GCJ-02 by
//!   default, or WGS-84) describes both its fence and the coordinates its devices send
//!   (ZJ-SIGNIN-08). Both sides of the test are therefore in the same system and
//!   [`Fence::contains`] never converts between GCJ-02 and WGS-84 (an offset of several hundred
//!   metres in China, which would be wrong to apply here).
//! - A circle is tested with the haversine great-circle distance ([`distance_meters`], mean earth
//!   radius 6,371,008.8 m).
//! - A polygon is tested by ray casting on raw (longitude, latitude) pairs, treated as planar:
//!   at construction-site scale (at most a few kilometres) the error is negligible. Polygons
//!   crossing the ±180° meridian or enclosing a pole are not supported (no site in China does).
//!   The polygon may be given closed (last point = first) or open.
//! - **The boundary is inside**, for both shapes: a point at exactly `radiusMeters` from the
//!   centre, or on a polygon's vertex or edge (within 1e-9° ≈ 0.1 mm), is inside the fence. A
//!   worker standing on the fence line gets the benefit of the doubt; GPS noise dwarfs the choice.
//! - [`Fence::validate`] runs when a fence is set (admin API). [`Fence::contains`] never panics;
//!   it answers `false` for a non-finite point and for a fence with out-of-range or non-finite
//!   values, a bad radius, or fewer than 3 or more than 1000 polygon points.

use serde::{Deserialize, Serialize};

/// Mean earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Largest circle radius accepted: 100 km.
pub const MAX_RADIUS_METERS: f64 = 100_000.0;
/// Most polygon points accepted (each sign-in tests every edge).
pub const MAX_POLYGON_POINTS: usize = 1000;
/// Distance (degrees) within which a point counts as on a polygon's edge.
const EDGE_EPSILON_DEG: f64 = 1e-9;

/// A position: longitude and latitude in degrees, in the project's [`CoordinateSystem`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Longitude in degrees, east positive, -180..=180.
    pub longitude: f64,
    /// Latitude in degrees, north positive, -90..=90.
    pub latitude: f64,
}

/// A project's electronic fence, in the JSON forms of docs/PRODUCT.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fence {
    /// `{"center": {"longitude", "latitude"}, "radiusMeters"}`.
    Circle {
        /// Centre of the circle.
        center: Point,
        /// Radius in metres, greater than 0 and at most 100 km.
        #[serde(rename = "radiusMeters")]
        radius_meters: f64,
    },
    /// `{"polygon": [[lng, lat], …]}`: at least 3 distinct points, open or closed.
    Polygon {
        /// Vertices as `[longitude, latitude]` pairs.
        polygon: Vec<[f64; 2]>,
    },
}

/// Why a fence was refused (messages name the rule, in Chinese for the console).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FenceError {
    /// A longitude outside -180..=180 or not a finite number.
    #[error("电子围栏经度 {0} 无效，应在 -180 到 180 之间")]
    Longitude(f64),
    /// A latitude outside -90..=90 or not a finite number.
    #[error("电子围栏纬度 {0} 无效，应在 -90 到 90 之间")]
    Latitude(f64),
    /// A radius not in (0, 100 km].
    #[error("电子围栏半径 {0} 米无效，应大于 0 且不超过 100 公里")]
    Radius(f64),
    /// Fewer than 3 distinct polygon points.
    #[error("电子围栏多边形至少需要 3 个不同的顶点，实际 {0} 个")]
    TooFewPoints(usize),
    /// More than [`MAX_POLYGON_POINTS`] polygon points.
    #[error("电子围栏多边形顶点过多（{0} 个），最多 1000 个")]
    TooManyPoints(usize),
    /// All polygon points on one line: the polygon encloses nothing.
    #[error("电子围栏多边形的顶点共线，围不出区域")]
    Degenerate,
}

/// The coordinate system of a project's fence and of its devices' coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoordinateSystem {
    /// GCJ-02 (火星坐标), what Chinese map SDKs use: the default.
    #[default]
    Gcj02,
    /// WGS-84, raw GPS.
    Wgs84,
}

impl CoordinateSystem {
    /// The JSON / database spelling: `gcj02` or `wgs84`.
    pub fn as_str(self) -> &'static str {
        match self {
            CoordinateSystem::Gcj02 => "gcj02",
            CoordinateSystem::Wgs84 => "wgs84",
        }
    }
}

impl Fence {
    /// Checks the fence: coordinates finite and in range (latitude -90..=90, longitude
    /// -180..=180), a radius in (0, 100 km], a polygon with 3 to 1000 points of which at least 3
    /// are distinct and not all on one line.
    pub fn validate(&self) -> Result<(), FenceError> {
        match self {
            Fence::Circle {
                center,
                radius_meters,
            } => {
                check_point(center.longitude, center.latitude)?;
                if !(radius_meters.is_finite()
                    && *radius_meters > 0.0
                    && *radius_meters <= MAX_RADIUS_METERS)
                {
                    return Err(FenceError::Radius(*radius_meters));
                }
                Ok(())
            }
            Fence::Polygon { polygon } => {
                if polygon.len() > MAX_POLYGON_POINTS {
                    return Err(FenceError::TooManyPoints(polygon.len()));
                }
                for [lng, lat] in polygon {
                    check_point(*lng, *lat)?;
                }
                // The first three distinct points (enough for both checks below).
                let mut distinct: Vec<[f64; 2]> = Vec::with_capacity(3);
                for p in polygon {
                    if !distinct.contains(p) {
                        distinct.push(*p);
                        if distinct.len() == 3 {
                            break;
                        }
                    }
                }
                let [a, b, _] = distinct[..] else {
                    return Err(FenceError::TooFewPoints(distinct.len()));
                };
                if all_collinear(a, b, polygon) {
                    return Err(FenceError::Degenerate);
                }
                Ok(())
            }
        }
    }

    /// Whether `p` is inside the fence (the boundary counts as inside; see the module docs).
    /// `p` must be in the same coordinate system as the fence: no conversion is made.
    pub fn contains(&self, p: Point) -> bool {
        if !(p.longitude.is_finite() && p.latitude.is_finite()) {
            return false;
        }
        match self {
            Fence::Circle {
                center,
                radius_meters,
            } => self.validate().is_ok() && distance_meters(*center, p) <= *radius_meters,
            // Cheap checks only (this runs for every mobile sign-in): a fence that validated
            // passes them; a collinear one just has no interior.
            Fence::Polygon { polygon } => {
                (3..=MAX_POLYGON_POINTS).contains(&polygon.len())
                    && polygon
                        .iter()
                        .all(|[lng, lat]| check_point(*lng, *lat).is_ok())
                    && polygon_contains(polygon, p.longitude, p.latitude)
            }
        }
    }
}

fn check_point(lng: f64, lat: f64) -> Result<(), FenceError> {
    if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
        return Err(FenceError::Longitude(lng));
    }
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(FenceError::Latitude(lat));
    }
    Ok(())
}

/// Whether every point lies on the line through the distinct points `a` and `b`, up to rounding
/// (the sine of the angle between `a→b` and `a→c` at most 1e-9).
fn all_collinear(a: [f64; 2], b: [f64; 2], points: &[[f64; 2]]) -> bool {
    let (ux, uy) = (b[0] - a[0], b[1] - a[1]);
    let u_len = ux.hypot(uy);
    points.iter().all(|c| {
        let (vx, vy) = (c[0] - a[0], c[1] - a[1]);
        (ux * vy - uy * vx).abs() <= 1e-9 * u_len * vx.hypot(vy)
    })
}

/// Ray casting (even-odd rule) on planar (lng, lat), boundary inclusive.
fn polygon_contains(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[j];
        if on_segment(xi, yi, xj, yj, x, y) {
            return true;
        }
        if (yi > y) != (yj > y) {
            let x_cross = xj + (y - yj) * (xi - xj) / (yi - yj);
            if x < x_cross {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Whether (x, y) lies within [`EDGE_EPSILON_DEG`] of the segment (x1, y1)–(x2, y2).
fn on_segment(x1: f64, y1: f64, x2: f64, y2: f64, x: f64, y: f64) -> bool {
    let (dx, dy) = (x2 - x1, y2 - y1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((x - x1) * dx + (y - y1) * dy) / len2).clamp(0.0, 1.0)
    };
    let (px, py) = (x1 + t * dx, y1 + t * dy);
    let d2 = (x - px) * (x - px) + (y - py) * (y - py);
    d2 <= EDGE_EPSILON_DEG * EDGE_EPSILON_DEG
}

/// Great-circle distance between two points in metres (haversine, earth radius 6,371,008.8 m).
pub fn distance_meters(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANGZHOU: Point = Point {
        longitude: 120.15507,
        latitude: 30.274084,
    };
    /// Metres per degree of latitude on the sphere used.
    const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

    fn north(p: Point, m: f64) -> Point {
        Point {
            latitude: p.latitude + m / M_PER_DEG,
            ..p
        }
    }

    fn east(p: Point, m: f64) -> Point {
        Point {
            longitude: p.longitude + m / (M_PER_DEG * p.latitude.to_radians().cos()),
            ..p
        }
    }

    fn pt(longitude: f64, latitude: f64) -> Point {
        Point {
            longitude,
            latitude,
        }
    }

    #[test]
    fn haversine_distances() {
        assert_eq!(distance_meters(HANGZHOU, HANGZHOU), 0.0);
        assert!((distance_meters(HANGZHOU, north(HANGZHOU, 150.0)) - 150.0).abs() < 0.01);
        assert!((distance_meters(HANGZHOU, east(HANGZHOU, 250.0)) - 250.0).abs() < 0.05);
        // Hangzhou to Shanghai (People's Square), about 164 km.
        let shanghai = pt(121.4737, 31.2304);
        let d = distance_meters(HANGZHOU, shanghai);
        assert!((160_000.0..170_000.0).contains(&d), "{d}");
        // Antipodes: half the circumference, no NaN.
        let d = distance_meters(pt(0.0, 0.0), pt(180.0, 0.0));
        assert!((d - EARTH_RADIUS_M * std::f64::consts::PI).abs() < 1e-6);
    }

    #[test]
    fn circle_inside_and_outside_near_the_boundary() {
        let fence = Fence::Circle {
            center: HANGZHOU,
            radius_meters: 200.0,
        };
        fence.validate().unwrap();
        assert!(fence.contains(HANGZHOU));
        assert!(fence.contains(north(HANGZHOU, 150.0)));
        assert!(fence.contains(east(HANGZHOU, 150.0)));
        assert!(fence.contains(north(HANGZHOU, 199.0)));
        assert!(!fence.contains(north(HANGZHOU, 201.0)));
        assert!(!fence.contains(north(HANGZHOU, 250.0)));
        assert!(!fence.contains(east(HANGZHOU, -250.0)));
        assert!(!fence.contains(pt(f64::NAN, 30.0)));
    }

    #[test]
    fn circle_boundary_is_inside() {
        let edge = north(HANGZHOU, 200.0);
        let d = distance_meters(HANGZHOU, edge);
        let fence = Fence::Circle {
            center: HANGZHOU,
            radius_meters: d,
        };
        assert!(fence.contains(edge));
    }

    #[test]
    fn polygon_square() {
        let square = Fence::Polygon {
            polygon: vec![
                [120.150, 30.270],
                [120.160, 30.270],
                [120.160, 30.280],
                [120.150, 30.280],
            ],
        };
        square.validate().unwrap();
        assert!(square.contains(HANGZHOU));
        assert!(square.contains(pt(120.1599, 30.2701)));
        assert!(!square.contains(pt(120.1601, 30.275)));
        assert!(!square.contains(pt(120.155, 30.2801)));
        assert!(!square.contains(pt(120.149, 30.269)));
        // Closed form (first point repeated) behaves the same.
        let closed = Fence::Polygon {
            polygon: vec![
                [120.150, 30.270],
                [120.160, 30.270],
                [120.160, 30.280],
                [120.150, 30.280],
                [120.150, 30.270],
            ],
        };
        closed.validate().unwrap();
        assert!(closed.contains(HANGZHOU));
        assert!(!closed.contains(pt(120.1601, 30.275)));
    }

    #[test]
    fn polygon_concave() {
        // A "U": two arms at x 0..1 and 2..3, joined by a base at y 0..1; the notch
        // x 1..2, y 1..3 is outside.
        let u = Fence::Polygon {
            polygon: vec![
                [120.0, 30.0],
                [120.003, 30.0],
                [120.003, 30.003],
                [120.002, 30.003],
                [120.002, 30.001],
                [120.001, 30.001],
                [120.001, 30.003],
                [120.0, 30.003],
            ],
        };
        u.validate().unwrap();
        assert!(u.contains(pt(120.0005, 30.002))); // left arm
        assert!(u.contains(pt(120.0025, 30.002))); // right arm
        assert!(u.contains(pt(120.0015, 30.0005))); // base
        assert!(!u.contains(pt(120.0015, 30.002))); // the notch
        assert!(!u.contains(pt(120.0015, 30.0035))); // above the notch
        // A ray through a vertex (y exactly at the notch's bottom) still counts right.
        assert!(u.contains(pt(120.0005, 30.001)));
        assert!(!u.contains(pt(119.9995, 30.001)));
    }

    #[test]
    fn polygon_vertices_and_edges_are_inside() {
        let tri = Fence::Polygon {
            polygon: vec![[120.0, 30.0], [120.01, 30.0], [120.0, 30.01]],
        };
        assert!(tri.contains(pt(120.0, 30.0)));
        assert!(tri.contains(pt(120.01, 30.0)));
        assert!(tri.contains(pt(120.0, 30.01)));
        assert!(tri.contains(pt(120.005, 30.0))); // bottom edge
        assert!(tri.contains(pt(120.0, 30.005))); // left edge
        assert!(tri.contains(pt(120.005, 30.005))); // hypotenuse
        assert!(!tri.contains(pt(120.006, 30.006)));
        assert!(!tri.contains(pt(120.005, 29.9999)));
    }

    #[test]
    fn validation_errors() {
        let circle = |lng: f64, lat: f64, r: f64| Fence::Circle {
            center: pt(lng, lat),
            radius_meters: r,
        };
        assert_eq!(
            circle(181.0, 30.0, 10.0).validate(),
            Err(FenceError::Longitude(181.0))
        );
        assert_eq!(
            circle(-180.5, 30.0, 10.0).validate(),
            Err(FenceError::Longitude(-180.5))
        );
        assert_eq!(
            circle(120.0, 90.5, 10.0).validate(),
            Err(FenceError::Latitude(90.5))
        );
        assert!(matches!(
            circle(120.0, f64::NAN, 10.0).validate(),
            Err(FenceError::Latitude(_))
        ));
        assert!(matches!(
            circle(f64::INFINITY, 30.0, 10.0).validate(),
            Err(FenceError::Longitude(_))
        ));
        assert_eq!(
            circle(120.0, 30.0, 0.0).validate(),
            Err(FenceError::Radius(0.0))
        );
        assert_eq!(
            circle(120.0, 30.0, -5.0).validate(),
            Err(FenceError::Radius(-5.0))
        );
        assert_eq!(
            circle(120.0, 30.0, 100_000.1).validate(),
            Err(FenceError::Radius(100_000.1))
        );
        assert!(matches!(
            circle(120.0, 30.0, f64::NAN).validate(),
            Err(FenceError::Radius(_))
        ));
        circle(180.0, -90.0, 100_000.0).validate().unwrap();

        let poly = |points: Vec<[f64; 2]>| Fence::Polygon { polygon: points };
        assert_eq!(poly(vec![]).validate(), Err(FenceError::TooFewPoints(0)));
        assert_eq!(
            poly(vec![[120.0, 30.0], [120.1, 30.0], [120.0, 30.0]]).validate(),
            Err(FenceError::TooFewPoints(2))
        );
        assert_eq!(
            poly(vec![[120.0, 30.0], [120.1, 30.1], [120.2, 30.2]]).validate(),
            Err(FenceError::Degenerate)
        );
        assert_eq!(
            poly(vec![[120.0, 30.0], [200.0, 30.0], [120.0, 31.0]]).validate(),
            Err(FenceError::Longitude(200.0))
        );
        assert_eq!(
            poly(vec![[120.0, 30.0]; 1001]).validate(),
            Err(FenceError::TooManyPoints(1001))
        );
        assert_eq!(
            FenceError::Radius(0.0).to_string(),
            "电子围栏半径 0 米无效，应大于 0 且不超过 100 公里"
        );
        // An invalid fence contains nothing (and does not panic).
        assert!(!circle(120.0, 30.0, f64::NAN).contains(pt(120.0, 30.0)));
        assert!(!poly(vec![[120.0, 30.0], [120.1, 30.0]]).contains(pt(120.0, 30.0)));
    }

    #[test]
    fn product_md_json_forms_parse() {
        let circle: Fence = serde_json::from_str(
            r#"{"center":{"longitude":120.15507,"latitude":30.274084},"radiusMeters":200}"#,
        )
        .unwrap();
        assert_eq!(
            circle,
            Fence::Circle {
                center: HANGZHOU,
                radius_meters: 200.0
            }
        );
        let polygon: Fence = serde_json::from_str(
            r#"{"polygon":[[120.15,30.27],[120.16,30.27],[120.16,30.28],[120.15,30.28]]}"#,
        )
        .unwrap();
        assert!(matches!(&polygon, Fence::Polygon { polygon } if polygon.len() == 4));
        // Both serialize back to the same forms.
        for f in [&circle, &polygon] {
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(&serde_json::from_str::<Fence>(&json).unwrap(), f);
        }
        assert_eq!(
            serde_json::to_value(&circle).unwrap(),
            serde_json::json!({"center":{"longitude":120.15507,"latitude":30.274084},"radiusMeters":200.0})
        );
        for bad in [
            r#"{"center":{"longitude":120.1},"radiusMeters":200}"#,
            r#"{"polygon":[[120.15]]}"#,
            r#"{"radius":5}"#,
            r#"[]"#,
        ] {
            assert!(serde_json::from_str::<Fence>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coordinate_system_serde() {
        assert_eq!(CoordinateSystem::default(), CoordinateSystem::Gcj02);
        assert_eq!(
            serde_json::to_string(&CoordinateSystem::Wgs84).unwrap(),
            r#""wgs84""#
        );
        assert_eq!(
            serde_json::from_str::<CoordinateSystem>(r#""gcj02""#).unwrap(),
            CoordinateSystem::Gcj02
        );
        assert!(serde_json::from_str::<CoordinateSystem>(r#""bd09""#).is_err());
        assert_eq!(CoordinateSystem::Wgs84.as_str(), "wgs84");
    }
}
