//! Composite types (as `Record`, named after the type's attributes) and anonymous records (as
//! `tuple`, their field types resolved from the data). Each field goes through its own codec.

use std::sync::Arc;

use pgoxide_proto::codec::composite;
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString, PyTuple};

use super::{core_error, expected, nested, Composite, EncodeResult, Resolver};
use crate::errors::data_error;
use crate::record::{Record, Values};
use crate::registry::Registry;

/// A composite value as a `Record` named after the type's attributes.
pub fn decode<'py>(py: Python<'py>, c: &Composite, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let fields = composite::decode_composite(data).map_err(core_error(py))?;
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
    let fields = composite::decode_composite(data).map_err(core_error(py))?;
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

/// A composite from a sequence (tuple, list, Record) in attribute order, or a mapping by name.
pub fn encode(c: &Composite, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let values: Vec<Option<Bound<'_, PyAny>>> = if let Ok(map) = v.cast::<PyMapping>() {
        for key in map.keys().map_err(|e| e.to_string())? {
            let key: String = key
                .extract()
                .map_err(|_| "composite keys must be attribute names".to_owned())?;
            if !c.names.contains(&key) {
                // asyncpg's words first, then which type.
                return Err(format!(
                    "'{key}' is not a valid element: {} has no attribute {key:?}",
                    c.type_name
                ));
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
