//! The geometric types: point, line, lseg, box, path, polygon and circle, all float8
//! coordinates.
//!
//! Worth knowing: box is sent upper-right corner first (`high`, then `low`), and the server
//! re-sorts the corners on receipt; path and polygon need at least one point; a circle's radius
//! may not be negative; and `line_recv` refuses A and B both (nearly) zero.

use super::nested::{unencodable, ValueReader};
use crate::error::Result;

/// PostgreSQL's EPSILON for geometric comparisons (`FPzero`).
const GEO_EPSILON: f64 = 1.0e-6;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// The line `a·x + b·y + c = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub a: f64,
    pub b: f64,
    pub c: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineSegment {
    pub start: Point,
    pub end: Point,
}

/// A box by its upper-right and lower-left corners, in wire order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoBox {
    pub high: Point,
    pub low: Point,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub closed: bool,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    pub center: Point,
    pub radius: f64,
}

fn read_point(r: &mut ValueReader<'_>) -> Result<Point> {
    Ok(Point {
        x: r.f64()?,
        y: r.f64()?,
    })
}

fn write_point(buf: &mut Vec<u8>, p: Point) {
    buf.extend_from_slice(&p.x.to_be_bytes());
    buf.extend_from_slice(&p.y.to_be_bytes());
}

fn read_points(r: &mut ValueReader<'_>) -> Result<Vec<Point>> {
    let n = r.count(16)?;
    if n == 0 {
        return Err(r.error("no points"));
    }
    if r.remaining() != n * 16 {
        return Err(r.error("point count does not match the data"));
    }
    (0..n).map(|_| read_point(r)).collect()
}

fn write_points(buf: &mut Vec<u8>, points: &[Point], type_name: &str) -> Result<()> {
    if points.is_empty() {
        return Err(unencodable(type_name, "it needs at least one point"));
    }
    let count =
        i32::try_from(points.len()).map_err(|_| unencodable(type_name, "too many points"))?;
    buf.extend_from_slice(&count.to_be_bytes());
    for p in points {
        write_point(buf, *p);
    }
    Ok(())
}

pub fn decode_point(data: &[u8]) -> Result<Point> {
    let mut r = ValueReader::new(data, "point");
    let p = read_point(&mut r)?;
    r.finish()?;
    Ok(p)
}

pub fn encode_point(buf: &mut Vec<u8>, p: Point) {
    write_point(buf, p);
}

pub fn decode_line(data: &[u8]) -> Result<Line> {
    let mut r = ValueReader::new(data, "line");
    let line = Line {
        a: r.f64()?,
        b: r.f64()?,
        c: r.f64()?,
    };
    r.finish()?;
    Ok(line)
}

/// Fails when A and B are both zero (within the server's epsilon): that is no line.
pub fn encode_line(buf: &mut Vec<u8>, line: Line) -> Result<()> {
    if line.a.abs() <= GEO_EPSILON && line.b.abs() <= GEO_EPSILON {
        return Err(unencodable("line", "A and B cannot both be zero"));
    }
    for v in [line.a, line.b, line.c] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    Ok(())
}

pub fn decode_lseg(data: &[u8]) -> Result<LineSegment> {
    let mut r = ValueReader::new(data, "lseg");
    let seg = LineSegment {
        start: read_point(&mut r)?,
        end: read_point(&mut r)?,
    };
    r.finish()?;
    Ok(seg)
}

pub fn encode_lseg(buf: &mut Vec<u8>, seg: LineSegment) {
    write_point(buf, seg.start);
    write_point(buf, seg.end);
}

pub fn decode_box(data: &[u8]) -> Result<GeoBox> {
    let mut r = ValueReader::new(data, "box");
    let b = GeoBox {
        high: read_point(&mut r)?,
        low: read_point(&mut r)?,
    };
    r.finish()?;
    Ok(b)
}

/// Corners in any order: the server makes `high` the upper right.
pub fn encode_box(buf: &mut Vec<u8>, b: GeoBox) {
    write_point(buf, b.high);
    write_point(buf, b.low);
}

/// Closed flag byte (any non-zero byte is closed, as in `path_recv`), Int32 count, points.
pub fn decode_path(data: &[u8]) -> Result<Path> {
    let mut r = ValueReader::new(data, "path");
    let closed = r.u8()? != 0;
    let points = read_points(&mut r)?;
    Ok(Path { closed, points })
}

pub fn encode_path(buf: &mut Vec<u8>, path: &Path) -> Result<()> {
    let start = buf.len();
    buf.push(u8::from(path.closed));
    write_points(buf, &path.points, "path").inspect_err(|_| buf.truncate(start))
}

/// Int32 count, points.
pub fn decode_polygon(data: &[u8]) -> Result<Vec<Point>> {
    let mut r = ValueReader::new(data, "polygon");
    read_points(&mut r)
}

pub fn encode_polygon(buf: &mut Vec<u8>, points: &[Point]) -> Result<()> {
    write_points(buf, points, "polygon")
}

pub fn decode_circle(data: &[u8]) -> Result<Circle> {
    let mut r = ValueReader::new(data, "circle");
    let c = Circle {
        center: read_point(&mut r)?,
        radius: r.f64()?,
    };
    r.finish()?;
    if c.radius < 0.0 {
        return Err(r.error("negative radius"));
    }
    Ok(c)
}

pub fn encode_circle(buf: &mut Vec<u8>, c: Circle) -> Result<()> {
    if c.radius < 0.0 {
        return Err(unencodable("circle", "negative radius"));
    }
    write_point(buf, c.center);
    buf.extend_from_slice(&c.radius.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::nested::hex;
    use proptest::prelude::*;

    fn pt(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    /// From PostgreSQL 15.18 (`point_send`, `line_send`, ...).
    #[test]
    fn server_vectors() {
        let mut buf = Vec::new();
        let mut check = |wire: &str, encode: &dyn Fn(&mut Vec<u8>)| {
            buf.clear();
            encode(&mut buf);
            assert_eq!(buf, hex(wire), "{wire}");
        };

        let w = "3ff00000000000004000000000000000";
        assert_eq!(decode_point(&hex(w)).unwrap(), pt(1.0, 2.0));
        check(w, &|b| encode_point(b, pt(1.0, 2.0)));
        let w = "bff80000000000007e37e43c8800759c";
        assert_eq!(decode_point(&hex(w)).unwrap(), pt(-1.5, 1e300));
        check(w, &|b| encode_point(b, pt(-1.5, 1e300)));
        let nan = decode_point(&hex("7ff8000000000000fff0000000000000")).unwrap();
        assert!(nan.x.is_nan() && nan.y == f64::NEG_INFINITY);

        let w = "3ff0000000000000bff00000000000000000000000000000";
        let line = Line {
            a: 1.0,
            b: -1.0,
            c: 0.0,
        };
        assert_eq!(decode_line(&hex(w)).unwrap(), line);
        check(w, &|b| encode_line(b, line).unwrap());
        let w = "3ff00000000000000000000000000000c008000000000000";
        let vertical = Line {
            a: 1.0,
            b: 0.0,
            c: -3.0,
        };
        assert_eq!(decode_line(&hex(w)).unwrap(), vertical);

        let w = "3ff0000000000000400000000000000040080000000000004010000000000000";
        let seg = LineSegment {
            start: pt(1.0, 2.0),
            end: pt(3.0, 4.0),
        };
        assert_eq!(decode_lseg(&hex(w)).unwrap(), seg);
        check(w, &|b| encode_lseg(b, seg));

        // '(1,2),(3,4)'::box is sent as high (3,4) then low (1,2).
        let w = "400800000000000040100000000000003ff00000000000004000000000000000";
        let bx = GeoBox {
            high: pt(3.0, 4.0),
            low: pt(1.0, 2.0),
        };
        assert_eq!(decode_box(&hex(w)).unwrap(), bx);
        check(w, &|b| encode_box(b, bx));

        let w = "00000000033ff000000000000040000000000000004008000000000000401000000000000040140000000000004018000000000000";
        let open = Path {
            closed: false,
            points: vec![pt(1.0, 2.0), pt(3.0, 4.0), pt(5.0, 6.0)],
        };
        assert_eq!(decode_path(&hex(w)).unwrap(), open);
        check(w, &|b| encode_path(b, &open).unwrap());
        let w = "01000000023ff0000000000000400000000000000040080000000000004010000000000000";
        let closed = Path {
            closed: true,
            points: vec![pt(1.0, 2.0), pt(3.0, 4.0)],
        };
        assert_eq!(decode_path(&hex(w)).unwrap(), closed);
        check(w, &|b| encode_path(b, &closed).unwrap());
        let w = "000000000100000000000000000000000000000000";
        let one = Path {
            closed: false,
            points: vec![pt(0.0, 0.0)],
        };
        assert_eq!(decode_path(&hex(w)).unwrap(), one);
        check(w, &|b| encode_path(b, &one).unwrap());

        let w = "00000003000000000000000000000000000000003ff0000000000000000000000000000000000000000000003ff0000000000000";
        let triangle = vec![pt(0.0, 0.0), pt(1.0, 0.0), pt(0.0, 1.0)];
        assert_eq!(decode_polygon(&hex(w)).unwrap(), triangle);
        check(w, &|b| encode_polygon(b, &triangle).unwrap());
        let w = "0000000140000000000000004008000000000000";
        assert_eq!(decode_polygon(&hex(w)).unwrap(), vec![pt(2.0, 3.0)]);
        check(w, &|b| encode_polygon(b, &[pt(2.0, 3.0)]).unwrap());

        let w = "3ff000000000000040000000000000004008000000000000";
        let circle = Circle {
            center: pt(1.0, 2.0),
            radius: 3.0,
        };
        assert_eq!(decode_circle(&hex(w)).unwrap(), circle);
        check(w, &|b| encode_circle(b, circle).unwrap());
        let w = "000000000000000000000000000000000000000000000000";
        let zero = Circle {
            center: pt(0.0, 0.0),
            radius: 0.0,
        };
        assert_eq!(decode_circle(&hex(w)).unwrap(), zero);
    }

    #[test]
    fn rejects_malformed() {
        let point = hex("3ff00000000000004000000000000000");
        assert!(decode_point(&point[..15]).is_err());
        assert!(decode_point(&[point.as_slice(), &[0]].concat()).is_err());
        assert!(decode_line(&point).is_err());
        assert!(decode_lseg(&point).is_err());
        assert!(decode_box(&point).is_err());
        assert!(decode_circle(&point).is_err());
        // Two points announced, one present.
        let short = [hex("0000000002"), point.clone()].concat();
        for bad in [
            hex(""),
            hex("00"),
            hex("0000000000"), // no points
            hex("00ffffffff"), // negative count
            short,
            hex("000000000100000000000000000000000000000000ff"), // trailing byte
        ] {
            assert!(decode_path(&bad).is_err(), "{bad:?}");
        }
        assert!(decode_polygon(&hex("00000000")).is_err());
        assert!(
            decode_circle(&hex("000000000000000000000000000000000000000000000000")[..23]).is_err()
        );
        assert!(decode_circle(&hex("00000000000000000000000000000000bff0000000000000")).is_err());
    }

    #[test]
    fn rejects_unencodable() {
        let mut buf = Vec::new();
        assert!(encode_polygon(&mut buf, &[]).is_err());
        assert!(encode_path(
            &mut buf,
            &Path {
                closed: true,
                points: vec![]
            }
        )
        .is_err());
        assert!(encode_circle(
            &mut buf,
            Circle {
                center: pt(0.0, 0.0),
                radius: -1.0
            }
        )
        .is_err());
        assert!(encode_line(
            &mut buf,
            Line {
                a: 0.0,
                b: 1e-9,
                c: 1.0
            }
        )
        .is_err());
        assert!(buf.is_empty());
    }

    fn any_point() -> impl Strategy<Value = Point> {
        (any::<f64>(), any::<f64>()).prop_map(|(x, y)| pt(x, y))
    }

    /// Compares bit patterns, so NaN round trips count as equal.
    fn same(a: Point, b: Point) -> bool {
        a.x.to_bits() == b.x.to_bits() && a.y.to_bits() == b.y.to_bits()
    }

    proptest! {
        #[test]
        fn round_trips(
            p in any_point(),
            q in any_point(),
            points in proptest::collection::vec(any_point(), 1..20),
            closed in any::<bool>(),
            radius in 0.0f64..1e300,
        ) {
            let mut buf = Vec::new();
            encode_point(&mut buf, p);
            prop_assert!(same(decode_point(&buf).unwrap(), p));

            buf.clear();
            encode_lseg(&mut buf, LineSegment { start: p, end: q });
            let seg = decode_lseg(&buf).unwrap();
            prop_assert!(same(seg.start, p) && same(seg.end, q));

            buf.clear();
            encode_box(&mut buf, GeoBox { high: p, low: q });
            let bx = decode_box(&buf).unwrap();
            prop_assert!(same(bx.high, p) && same(bx.low, q));

            buf.clear();
            let path = Path { closed, points: points.clone() };
            encode_path(&mut buf, &path).unwrap();
            let back = decode_path(&buf).unwrap();
            prop_assert_eq!(back.closed, closed);
            prop_assert!(back.points.iter().zip(&points).all(|(a, b)| same(*a, *b)));
            prop_assert_eq!(back.points.len(), points.len());

            buf.clear();
            encode_polygon(&mut buf, &points).unwrap();
            let back = decode_polygon(&buf).unwrap();
            prop_assert!(back.iter().zip(&points).all(|(a, b)| same(*a, *b)));

            buf.clear();
            let circle = Circle { center: p, radius };
            encode_circle(&mut buf, circle).unwrap();
            let back = decode_circle(&buf).unwrap();
            prop_assert!(same(back.center, p) && back.radius.to_bits() == radius.to_bits());

            if p.x.abs() > 1.0 {
                buf.clear();
                let line = Line { a: p.x, b: p.y, c: q.x };
                encode_line(&mut buf, line).unwrap();
                let back = decode_line(&buf).unwrap();
                prop_assert!(back.a.to_bits() == line.a.to_bits() && back.b.to_bits() == line.b.to_bits());
            }
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..70)) {
            let _ = decode_point(&data);
            let _ = decode_line(&data);
            let _ = decode_lseg(&data);
            let _ = decode_box(&data);
            let _ = decode_path(&data);
            let _ = decode_polygon(&data);
            let _ = decode_circle(&data);
        }
    }
}
