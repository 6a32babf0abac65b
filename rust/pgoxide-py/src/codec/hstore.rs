//! hstore, as a dict of str to str or None.

use pgoxide_proto::codec::hstore;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};

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

/// hstore from a mapping of str to str or None.
pub fn encode(v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
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
