//! Geometric types: point, line, lseg, box, path, polygon and circle, as the
//! `pgoxide.types` classes (tuples of coordinates are accepted too).

use pgoxide_proto::codec::geometry as geo;
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::{core_error, expected, EncodeResult};
use crate::pycache;

/// Decodes a value of one of the types of this family.
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    let types = |name: &str| pycache::types_attr(py, name);
    Ok(match b {
        Builtin::Point => {
            let p = geo::decode_point(data).map_err(core)?;
            types("Point")?.call1((p.x, p.y))?
        }
        Builtin::Line => {
            let l = geo::decode_line(data).map_err(core)?;
            types("Line")?.call1((l.a, l.b, l.c))?
        }
        Builtin::Lseg => {
            let s = geo::decode_lseg(data).map_err(core)?;
            types("LineSegment")?.call1(((s.start.x, s.start.y), (s.end.x, s.end.y)))?
        }
        Builtin::Box => {
            let b = geo::decode_box(data).map_err(core)?;
            types("Box")?.call1(((b.high.x, b.high.y), (b.low.x, b.low.y)))?
        }
        Builtin::Path => {
            let path = geo::decode_path(data).map_err(core)?;
            let points = PyTuple::new(py, path.points.iter().map(|p| (p.x, p.y)))?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("is_closed", path.closed)?;
            types("Path")?.call(points, Some(&kwargs))?
        }
        Builtin::Polygon => {
            let points = geo::decode_polygon(data).map_err(core)?;
            types("Polygon")?.call1(PyTuple::new(py, points.iter().map(|p| (p.x, p.y)))?)?
        }
        Builtin::Circle => {
            let c = geo::decode_circle(data).map_err(core)?;
            types("Circle")?.call1(((c.center.x, c.center.y), c.radius))?
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let core = |e: pgoxide_proto::Error| e.to_string();
    match b {
        Builtin::Point => geo::encode_point(buf, point_of(v)?),
        Builtin::Line => {
            let (a, b, c): (f64, f64, f64) =
                v.extract().map_err(|_| expected("Line or (A, B, C)", v))?;
            geo::encode_line(buf, geo::Line { a, b, c }).map_err(core)?;
        }
        Builtin::Lseg => {
            let (start, end) = two_points(v, "LineSegment or two points")?;
            geo::encode_lseg(buf, geo::LineSegment { start, end });
        }
        Builtin::Box => {
            let (high, low) = two_points(v, "Box or two points")?;
            geo::encode_box(buf, geo::GeoBox { high, low });
        }
        Builtin::Path => {
            // A Path says; otherwise, as asyncpg reads them, a tuple of points is a closed
            // path and a list an open one.
            let closed = v
                .getattr("is_closed")
                .and_then(|c| c.extract())
                .unwrap_or_else(|_| v.is_instance_of::<PyTuple>());
            let points = points_of(v)?;
            geo::encode_path(buf, &geo::Path { closed, points }).map_err(core)?;
        }
        Builtin::Polygon => geo::encode_polygon(buf, &points_of(v)?).map_err(core)?,
        Builtin::Circle => {
            let (center, radius): (Bound<'_, PyAny>, f64) = v
                .extract()
                .map_err(|_| expected("Circle or (center, radius)", v))?;
            geo::encode_circle(
                buf,
                geo::Circle {
                    center: point_of(&center)?,
                    radius,
                },
            )
            .map_err(core)?;
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

fn point_of(v: &Bound<'_, PyAny>) -> Result<geo::Point, String> {
    let (x, y): (f64, f64) = v.extract().map_err(|_| expected("Point or (x, y)", v))?;
    Ok(geo::Point { x, y })
}

fn two_points(v: &Bound<'_, PyAny>, what: &str) -> Result<(geo::Point, geo::Point), String> {
    let (a, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
        v.extract().map_err(|_| expected(what, v))?;
    Ok((point_of(&a)?, point_of(&b)?))
}

fn points_of(v: &Bound<'_, PyAny>) -> Result<Vec<geo::Point>, String> {
    let source = v.getattr("points").unwrap_or_else(|_| v.clone());
    source
        .try_iter()
        .map_err(|_| expected("Path, Polygon or a sequence of points", v))?
        .map(|p| point_of(&p.map_err(|e| e.to_string())?))
        .collect()
}
