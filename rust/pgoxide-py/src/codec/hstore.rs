//! hstore as a dict of str to str or None: asyncpg's `pg_contrib.hstore` codec, chosen with
//! `set_builtin_type_codec('hstore', codec_name='pg_contrib.hstore')`. Without it hstore is
//! text (a `str`), as in asyncpg.

use pgoxide_proto::codec::hstore;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMapping, PyString};

use super::{core_error, expected, text, EncodeResult};

/// hstore as a dict of str to str or None.
pub fn decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (key, value) in hstore::decode_hstore(data).map_err(core_error(py))? {
        let value = match value {
            Some(v) => text(py, v)?,
            None => py.None().into_bound(py),
        };
        dict.set_item(text(py, key)?, value)?;
    }
    Ok(dict.into_any())
}

/// hstore from a mapping of str to str or None, or (as asyncpg) an iterable of key-value
/// pairs.
pub fn encode(v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    let items = if let Ok(map) = v.cast::<PyMapping>() {
        map.items().map_err(|e| e.to_string())?.into_any()
    } else if v.is_instance_of::<PyString>() || v.is_instance_of::<PyBytes>() {
        return Err(expected("dict", v));
    } else {
        v.clone()
    };
    let iter = items.try_iter().map_err(|_| expected("dict", v))?;
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for item in iter {
        let item = item.map_err(|e| e.to_string())?;
        let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item
            .extract()
            .map_err(|_| format!("{} (a key-value pair)", expected("a dict or pairs", &item)))?;
        if k.is_none() {
            // asyncpg's words.
            return Err("null value not allowed in hstore key".into());
        }
        let key: String = k
            .extract()
            .map_err(|_| format!("hstore keys must be str ({})", expected("str", &k)))?;
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
