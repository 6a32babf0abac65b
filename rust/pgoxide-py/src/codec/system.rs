//! System types: tid (as a `(block, offset)` tuple), pg_lsn (as `pgoxide.types.Lsn`) and
//! pg_snapshot (as an `(xmin, xmax, (xip, ...))` tuple).

use pgoxide_proto::codec::misc;
use pgoxide_proto::types::Builtin;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::{core_error, expected, scalars, type_name, EncodeResult};
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
        // asyncpg's words for each way a tid can be wrong.
        Builtin::Tid => {
            let [block, offset] = &items::<2>(v, "tid")?;
            let block = scalars::int::<u32>(block, "tuple id block value out of uint32 range")?;
            let offset = scalars::int::<u16>(offset, "tuple id offset value out of uint16 range")?;
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
            let [xmin, xmax, xip] = &items::<3>(v, "txid_snapshot")?;
            let xmin = scalars::int::<u64>(xmin, "xmin value out of uint64 range")?;
            let xmax = scalars::int::<u64>(xmax, "xmax value out of uint64 range")?;
            let xip: Vec<u64> = xip
                .extract()
                .map_err(|_| expected("a sequence of uint64 xip values", xip))?;
            misc::encode_snapshot(buf, &misc::Snapshot { xmin, xmax, xip })
                .map_err(|e| e.to_string())?;
        }
        _ => unreachable!("not a type of this family: {b:?}"),
    }
    Ok(())
}

/// The `N` items of a tuple or list, as asyncpg takes tids and snapshots, in its words.
fn items<'py, const N: usize>(
    v: &Bound<'py, PyAny>,
    what: &str,
) -> Result<[Bound<'py, PyAny>; N], String> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(t) = v.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = v.cast::<PyList>() {
        l.iter().collect()
    } else {
        return Err(format!("list or tuple expected, got {}", type_name(v)));
    };
    let n = items.len();
    items
        .try_into()
        .map_err(|_| format!("invalid number of elements in {what} tuple, expecting {N}, got {n}"))
}
