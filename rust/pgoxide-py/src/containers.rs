//! Values made of other values: composites (as `Record`), anonymous records (as `tuple`),
//! ranges and multiranges (as `pgoxide.types.Range` and lists of them) and hstore (as `dict`).
//! Both directions; each nested value goes through its own codec.

use std::ops::Bound as Edge;
use std::sync::Arc;

use pgoxide_proto::codec::{composite, hstore, range};
use pgoxide_proto::Error;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString, PyTuple};

use crate::codec::{Codec, Composite, Resolver};
use crate::decode::text;
use crate::encode::{expected, EncodeResult};
use crate::errors::data_error;
use crate::pycache;
use crate::record::{Record, Values};
use crate::registry::Registry;

fn core(py: Python<'_>) -> impl Fn(Error) -> PyErr + Copy + '_ {
    move |e| data_error(py, e.to_string())
}

/// A composite value as a `Record` named after the type's attributes.
pub fn decode_composite<'py>(
    py: Python<'py>,
    c: &Composite,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let fields = composite::decode_composite(data).map_err(core(py))?;
    if fields.len() != c.fields.len() {
        return Err(data_error(
            py,
            format!(
                "{} has {} attributes but the value has {}",
                c.type_name,
                c.fields.len(),
                fields.len()
            ),
        ));
    }
    let mut values = Values::with_capacity(py, fields.len())?;
    for ((_, value), (_, codec)) in fields.zip(&c.fields) {
        values.push(match value {
            None => py.None(),
            Some(bytes) => codec.decode(py, bytes)?.unbind(),
        });
    }
    Ok(Record::create(py, c.desc.clone_ref(py), values)?
        .into_bound(py)
        .into_any())
}

/// An anonymous record as a tuple; its field types come with the data.
pub fn decode_record<'py>(
    py: Python<'py>,
    registry: &Arc<Registry>,
    data: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let fields = composite::decode_composite(data).map_err(core(py))?;
    let mut values = Vec::with_capacity(fields.len());
    for (oid, value) in fields {
        values.push(match value {
            None => py.None().into_bound(py),
            Some(bytes) => {
                let mut resolver = Resolver::new(registry);
                let codec = resolver.codec(py, oid)?;
                if !resolver.unknown.is_empty() {
                    return Err(data_error(
                        py,
                        format!("a record field has a type this connection has not seen (OID {oid}); cast the field to a known type"),
                    ));
                }
                if codec.format() == 0 {
                    // Fields of a record always arrive in binary.
                    return Err(data_error(py, format!("no binary codec for a record field of type OID {oid}")));
                }
                let value = codec.decode(py, bytes)?;
                // The tuple is Python's, tracked by the collector, so what the decoder built
                // untracked inside a field (an array's lists, a composite) must be tracked
                // now: nothing will get to it later.
                crate::record::track_lists(value.as_ptr());
                value
            }
        });
    }
    Ok(PyTuple::new(py, values)?.into_any())
}

/// A range as `pgoxide.types.Range`.
pub fn decode_range<'py>(py: Python<'py>, sub: &Codec, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let r = range::decode_range(data).map_err(core(py))?;
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
    let ranges = range::decode_multirange(data).map_err(core(py))?;
    let list = PyList::empty(py);
    for r in ranges {
        list.append(range_codec.decode(py, r)?)?;
    }
    Ok(list.into_any())
}

/// hstore as a dict of str to str or None.
pub fn decode_hstore<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (key, value) in hstore::decode_hstore(data).map_err(core(py))? {
        let value = match value {
            Some(v) => text(py, v)?,
            None => py.None().into_bound(py),
        };
        dict.set_item(text(py, key)?, value)?;
    }
    Ok(dict.into_any())
}

/// Encodes a nested value through its codec, for the core's closure-based writers.
fn nested<'a>(
    codec: &'a Codec,
    v: &'a Bound<'_, PyAny>,
) -> impl FnOnce(&mut Vec<u8>) -> pgoxide_proto::error::Result<()> + 'a {
    move |buf| codec.encode(v, buf).map_err(Error::Encode)
}

/// A composite from a sequence (tuple, list, Record) in attribute order, or a mapping by name.
pub fn encode_composite(c: &Composite, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let values: Vec<Option<Bound<'_, PyAny>>> = if let Ok(map) = v.cast::<PyMapping>() {
        for key in map.keys().map_err(|e| e.to_string())? {
            let key: String = key
                .extract()
                .map_err(|_| "composite keys must be attribute names".to_owned())?;
            if !c.names.contains(&key) {
                return Err(format!("{} has no attribute {key:?}", c.type_name));
            }
        }
        c.names.iter().map(|n| map.get_item(n).ok()).collect()
    } else if v.is_instance_of::<PyString>() {
        return Err(expected("tuple, Record or dict", v));
    } else {
        let items: Vec<Bound<'_, PyAny>> = v
            .try_iter()
            .map_err(|_| expected("tuple, Record or dict", v))?
            .collect::<PyResult<_>>()
            .map_err(|e| e.to_string())?;
        if items.len() != c.fields.len() {
            return Err(format!(
                "{} has {} attributes, got {} values",
                c.type_name,
                c.fields.len(),
                items.len()
            ));
        }
        items.into_iter().map(Some).collect()
    };
    let mut enc = composite::CompositeEncoder::begin(buf);
    for ((value, (oid, codec)), name) in values.iter().zip(&c.fields).zip(&c.names) {
        match value {
            Some(v) if !v.is_none() => enc
                .field_with(*oid, nested(codec, v))
                .map_err(|e| format!("attribute {name:?}: {e}"))?,
            _ => enc.field(*oid, None).map_err(|e| e.to_string())?,
        }
    }
    enc.finish().map_err(|e| e.to_string())
}

/// A range from a `Range`-like object (lower, upper, lower_inc, upper_inc, isempty) or a
/// `(lower, upper)` pair taken as `[lower, upper)`.
pub fn encode_range(sub: &Codec, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
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
    let (lower, upper): (Bound<'py, PyAny>, Bound<'py, PyAny>) = v
        .extract()
        .map_err(|_| expected("Range or (lower, upper)", v))?;
    Ok((non_null(lower), non_null(upper), true, false, false))
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
    for item in v.try_iter().map_err(|_| expected("a list of ranges", v))? {
        let item = item.map_err(|e| e.to_string())?;
        let mut one = Vec::new();
        encode_range(sub, &item, &mut one)?;
        enc.range_bytes(&one).map_err(|e| e.to_string())?;
    }
    enc.finish().map_err(|e| e.to_string())
}

/// hstore from a mapping of str to str or None.
pub fn encode_hstore(v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let map = v.cast::<PyMapping>().map_err(|_| expected("dict", v))?;
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for item in map.items().map_err(|e| e.to_string())?.iter() {
        let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            item.extract().map_err(|e: PyErr| e.to_string())?;
        let key: String = k
            .extract()
            .map_err(|_| format!("hstore keys must be str, got {}", expected("str", &k)))?;
        let value = if val.is_none() {
            None
        } else {
            Some(
                val.extract::<String>()
                    .map_err(|_| format!("hstore values must be str or None ({key:?})"))?,
            )
        };
        pairs.push((key, value));
    }
    hstore::encode_hstore(
        buf,
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref().map(str::as_bytes))),
    )
    .map_err(|e| e.to_string())
}
