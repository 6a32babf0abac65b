//! Ranges (as `pgoxide.types.Range`) and multiranges (as lists of them); each bound goes
//! through the codec of the range's subtype.

use std::ops::Bound as Edge;

use pgoxide_proto::codec::range;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::{core_error, expected, nested, Codec, EncodeResult};
use crate::pycache;

/// A range as `pgoxide.types.Range`.
pub fn decode<'py>(py: Python<'py>, sub: &Codec, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let r = range::decode_range(data).map_err(core_error(py))?;
    let kwargs = PyDict::new(py);
    if r.is_empty() {
        kwargs.set_item("empty", true)?;
        return pycache::types_attr(py, "Range")?.call((), Some(&kwargs));
    }
    let bound = |edge: Edge<&[u8]>| -> PyResult<(Bound<'py, PyAny>, bool)> {
        Ok(match edge {
            Edge::Included(b) => (sub.decode(py, b)?, true),
            Edge::Excluded(b) => (sub.decode(py, b)?, false),
            Edge::Unbounded => (py.None().into_bound(py), false),
        })
    };
    let (lower, lower_inc) = bound(r.lower_bound())?;
    let (upper, upper_inc) = bound(r.upper_bound())?;
    // A Range is Python's: a bound the decoder built untracked (a composite) is tracked now.
    crate::record::track_lists(lower.as_ptr());
    crate::record::track_lists(upper.as_ptr());
    kwargs.set_item("lower_inc", lower_inc)?;
    kwargs.set_item("upper_inc", upper_inc)?;
    pycache::types_attr(py, "Range")?.call((lower, upper), Some(&kwargs))
}

/// A multirange as a list of `Range`.
pub fn decode_multirange<'py>(
    py: Python<'py>,
    range_codec: &Codec,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let ranges = range::decode_multirange(data).map_err(core_error(py))?;
    let list = PyList::empty(py);
    for r in ranges {
        list.append(range_codec.decode(py, r)?)?;
    }
    Ok(list.into_any())
}

/// A range from a `Range`-like object (lower, upper, lower_inc, upper_inc, isempty), or a
/// tuple or list of 0, 1 or 2 bounds as asyncpg takes them (see `range_parts`).
pub fn encode(sub: &Codec, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let (lower, upper, lower_inc, upper_inc, empty) = range_parts(v)?;
    if empty {
        range::encode_empty_range(buf);
        return Ok(());
    }
    let edge = |present: bool, inclusive: bool| match (present, inclusive) {
        (false, _) => Edge::Unbounded,
        (true, true) => Edge::Included(()),
        (true, false) => Edge::Excluded(()),
    };
    let lo =
        edge(lower.is_some(), lower_inc).map(|()| nested(sub, lower.as_ref().expect("present")));
    let hi =
        edge(upper.is_some(), upper_inc).map(|()| nested(sub, upper.as_ref().expect("present")));
    range::encode_range(buf, lo, hi).map_err(|e| e.to_string())
}

type RangeParts<'py> = (
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    bool,
    bool,
    bool,
);

fn range_parts<'py>(v: &Bound<'py, PyAny>) -> Result<RangeParts<'py>, String> {
    let non_null = |b: Bound<'py, PyAny>| (!b.is_none()).then_some(b);
    if v.hasattr("isempty").unwrap_or(false) {
        let get = |name: &str| v.getattr(name).map_err(|e| e.to_string());
        let flag = |name: &str| get(name).and_then(|b| b.is_truthy().map_err(|e| e.to_string()));
        return Ok((
            non_null(get("lower")?),
            non_null(get("upper")?),
            flag("lower_inc")?,
            flag("upper_inc")?,
            flag("isempty")?,
        ));
    }
    // asyncpg's shorthand: () is empty, (a,) is [a, infinity), (a, b) is [a, b] (None for
    // an unbounded side).
    let items: Vec<Bound<'py, PyAny>> = if let Ok(t) = v.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = v.cast::<PyList>() {
        l.iter().collect()
    } else {
        let got = v
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        return Err(format!("list, tuple or Range object expected (got {got})"));
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.len()) {
        (None, _, _) => Ok((None, None, false, false, true)),
        (Some(lower), None, _) => Ok((non_null(lower), None, true, false, false)),
        (Some(lower), Some(upper), 0) => Ok((non_null(lower), non_null(upper), true, true, false)),
        (_, _, more) => Err(format!(
            "expected 0, 1 or 2 elements in range (got {})",
            more + 2
        )),
    }
}

/// A multirange from a sequence of ranges.
pub fn encode_multirange(
    range_codec: &Codec,
    v: &Bound<'_, PyAny>,
    buf: &mut Vec<u8>,
) -> EncodeResult {
    let Codec::Range(sub, _) = range_codec else {
        return Err("multirange of a non-range type".into());
    };
    let mut enc = range::MultirangeEncoder::begin(buf);
    if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return Err(expected("a sequence of ranges", v));
    }
    for item in v
        .try_iter()
        .map_err(|_| expected("a sequence of ranges", v))?
    {
        let item = item.map_err(|e| e.to_string())?;
        let mut one = Vec::new();
        encode(sub, &item, &mut one)?;
        enc.range_bytes(&one).map_err(|e| e.to_string())?;
    }
    enc.finish().map_err(|e| e.to_string())
}
