//! System types: tid (as a `(block, offset)` tuple), pg_lsn (as `pgoxide.types.Lsn`) and
//! pg_snapshot (as an `(xmin, xmax, (xip, ...))` tuple).

use pgoxide_proto::codec::misc;
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::{core_error, expected, EncodeResult};
use crate::pycache;

/// Decodes a value of one of the types of this family.
pub fn decode<'py>(py: Python<'py>, b: Builtin, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let core = core_error(py);
    Ok(match b {
        Builtin::Tid => {
            let t = misc::decode_tid(data).map_err(core)?;
            (t.block, t.offset).into_pyobject(py)?.into_any()
        }
        Builtin::PgLsn => {
            pycache::types_attr(py, "Lsn")?.call1((misc::decode_pg_lsn(data).map_err(core)?,))?
        }
        Builtin::Snapshot => {
            let s = misc::decode_snapshot(data).map_err(core)?;
            (s.xmin, s.xmax, PyTuple::new(py, s.xip)?)
                .into_pyobject(py)?
                .into_any()
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    })
}

/// Encodes a value of one of the types of this family.
pub fn encode(b: Builtin, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> EncodeResult {
    match b {
        Builtin::Tid => {
            let (block, offset): (u32, u16) =
                v.extract().map_err(|_| expected("(block, offset)", v))?;
            misc::encode_tid(buf, misc::Tid { block, offset });
        }
        Builtin::PgLsn => {
            let lsn = if v.is_instance_of::<PyString>() {
                pycache::types_attr(v.py(), "Lsn")
                    .and_then(|c| c.call1((v,)))
                    .map_err(|e| e.to_string())?
            } else {
                v.clone()
            };
            misc::encode_pg_lsn(
                buf,
                lsn.extract()
                    .map_err(|_| expected("Lsn, int or 'X/Y' str", v))?,
            );
        }
        Builtin::Snapshot => {
            let (xmin, xmax, xip): (u64, u64, Vec<u64>) = v
                .extract()
                .map_err(|_| expected("(xmin, xmax, (xip, ...))", v))?;
            misc::encode_snapshot(buf, &misc::Snapshot { xmin, xmax, xip })
                .map_err(|e| e.to_string())?;
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}
