//! `Record`: an immutable row with access by position, name and slice, as asyncpg's.
//!
//! Every row of a result shares one [`RecordDesc`] (column names and the name-to-position
//! map), so a row costs its values and nothing else.

use std::ptr::NonNull;

use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyIndexError, PyKeyError, PyMemoryError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::{PyDict, PyList, PySlice, PyString, PyTuple, PyType};
use pyo3::PyTypeInfo;

use crate::pycache;

/// Column names of a result and their positions, shared by all its rows.
#[pyclass(frozen, module = "pgoxide._pgoxide")]
pub struct RecordDesc {
    pub names: Py<PyTuple>,
    pub index: Py<PyDict>,
}

impl RecordDesc {
    pub fn new(py: Python<'_>, names: &[String]) -> PyResult<Py<Self>> {
        let index = PyDict::new(py);
        // With duplicate column names, the last occurrence wins, as in asyncpg.
        for (i, n) in names.iter().enumerate() {
            index.set_item(n, i)?;
        }
        Py::new(
            py,
            Self {
                names: PyTuple::new(py, names)?.unbind(),
                index: index.unbind(),
            },
        )
    }
}

#[pyclass(frozen, subclass, module = "pgoxide", name = "Record")]
pub struct Record {
    desc: Py<RecordDesc>,
    values: Values,
    /// Which values may take part in a reference cycle: bit `i` for value `i` below 63, bit
    /// 63 for any from 63 on. A record with any must be tracked by the garbage collector once
    /// it is handed out, and the collector need visit only those: looking at every value's
    /// type would touch a dozen objects per row, all long out of the cache after a large
    /// result.
    cycle_mask: u64,
}

/// A record's values, in an array from Python's allocator.
///
/// Its pools serve the few dozen bytes a row needs several times faster than the system
/// allocator does, which shows with one array per row. That allocator needs the GIL: the
/// array is made with it (a `Python` token) and freed with it (attached in `drop`, which
/// costs nothing in `Record`'s deallocation, where the GIL is already held).
pub struct Values {
    ptr: NonNull<Py<PyAny>>,
    // 32 bits each (a row has at most 1,664 columns), so that a record fits pymalloc's 64-byte
    // size class rather than the 80-byte one: 16 bytes less memory to fault in per row.
    len: u32,
    capacity: u32,
}

// SAFETY: the array only holds `Py` references, which may move between threads, and is
// freed with the GIL held wherever it is dropped.
unsafe impl Send for Values {}
unsafe impl Sync for Values {}

impl Values {
    /// Room for `capacity` values.
    #[inline]
    pub fn with_capacity(_py: Python<'_>, capacity: usize) -> PyResult<Self> {
        let capacity = u32::try_from(capacity)
            .map_err(|_| PyMemoryError::new_err("too many values for a record"))?;
        let bytes = (capacity.max(1) as usize) * std::mem::size_of::<Py<PyAny>>();
        // SAFETY: the GIL is held (the token says so).
        let raw = unsafe { ffi::PyMem_Malloc(bytes) };
        let ptr = NonNull::new(raw.cast())
            .ok_or_else(|| PyMemoryError::new_err("out of memory for a record"))?;
        Ok(Self {
            ptr,
            len: 0,
            capacity,
        })
    }

    /// Appends `value`; there must be room for it.
    pub fn push(&mut self, value: Py<PyAny>) {
        assert!(
            self.len < self.capacity,
            "more values than the record has room for"
        );
        // SAFETY: in bounds of the allocation, and the slot is unused.
        unsafe { self.ptr.as_ptr().add(self.len as usize).write(value) };
        self.len += 1;
    }
}

impl std::ops::Deref for Values {
    type Target = [Py<PyAny>];

    fn deref(&self) -> &[Py<PyAny>] {
        // SAFETY: the first `len` slots hold initialised values.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl Drop for Values {
    fn drop(&mut self) {
        Python::attach(|_| {
            // SAFETY: the first `len` slots hold values we own, and the array came from
            // PyMem_Malloc; the GIL is held.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    self.len as usize,
                ));
                ffi::PyMem_Free(self.ptr.as_ptr().cast());
            }
        });
    }
}

impl Record {
    /// A new record, not yet tracked by the garbage collector: see [`Record::track_result`].
    pub fn create(py: Python<'_>, desc: Py<RecordDesc>, values: Values) -> PyResult<Py<Self>> {
        let cycle_mask = cycle_mask(&values, |v| may_join_cycle(py, v));
        let record = Py::new(
            py,
            Self {
                desc,
                values,
                cycle_mask,
            },
        )?;
        // SAFETY: `record` is a live GC object we own; untracking is always allowed.
        unsafe { ffi::PyObject_GC_UnTrack(record.as_ptr().cast()) };
        Ok(record)
    }

    /// Hands a finished result's rows to the garbage collector.
    ///
    /// Rows are built untracked, together with their array lists: nothing outside the
    /// operation can reach them before it completes, and a collector that walked the growing
    /// result over and over would cost more than decoding it. Like CPython does for tuples,
    /// records none of whose values can ever take part in a cycle stay untracked: they are
    /// immutable, so they cannot join one later either. Instances of a `record_class` were
    /// built by Python and are tracked already; their values still need the pass.
    pub fn track_result(rows: &Bound<'_, PyList>) {
        let record_type = Record::type_object_raw(rows.py());
        for row in rows.iter() {
            track_row(&row, record_type);
        }
    }

    /// [`Record::track_result`] for a record handed out on its own (replication changes).
    pub fn track_one(row: &Bound<'_, PyAny>) {
        track_row(row, Record::type_object_raw(row.py()));
    }

    /// A row as an instance of a user's `record_class` (a subclass of `Record`).
    pub fn create_of_class<'py>(
        cls: &Bound<'py, PyType>,
        desc: Py<RecordDesc>,
        values: &Values,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let values = PyList::new(py, values.iter().map(|v| v.bind(py)))?;
        cls.call_method1(pyo3::intern!(py, "__new__"), (cls, desc, values))
    }

    fn position(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        if let Ok(name) = key.cast::<PyString>() {
            let index = self.desc.get().index.bind(py);
            return match index.get_item(name)? {
                Some(i) => Ok(Some(i.extract()?)),
                None => Ok(None),
            };
        }
        let i: isize = key.extract().map_err(|_| {
            PyTypeError::new_err("Record indices must be integers, slices or column names")
        })?;
        let n = self.values.len() as isize;
        let i = if i < 0 { i + n } else { i };
        Ok((0..n).contains(&i).then_some(i as usize))
    }

    fn values_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.values.iter().map(|v| v.bind(py)))
    }

    /// Whether a value may take part in a cycle ([`Record::track_result`] must look at it).
    pub fn is_cyclic(&self) -> bool {
        self.cycle_mask != 0
    }

    /// The values [`Record::cycle_mask`] names: those that may take part in a cycle, and all
    /// from position 63 on if any there may.
    fn cycle_candidates(&self) -> impl Iterator<Item = &Py<PyAny>> {
        let mut low = self.cycle_mask & !(1 << 63);
        let high = if self.cycle_mask >> 63 == 0 {
            &[][..]
        } else {
            &self.values[63..]
        };
        std::iter::from_fn(move || {
            (low != 0).then(|| {
                let i = low.trailing_zeros() as usize;
                low &= low - 1;
                &self.values[i]
            })
        })
        .chain(high)
    }
}

/// [`Record::cycle_mask`] of `values`, given which may take part in a cycle.
fn cycle_mask(values: &[Py<PyAny>], may_join: impl Fn(*mut ffi::PyObject) -> bool) -> u64 {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| may_join(v.as_ptr()))
        .fold(0, |mask, (i, _)| mask | 1 << i.min(63))
}

/// Whether `obj` might ever be part of a reference cycle: CPython's
/// `_PyObject_GC_MAY_BE_TRACKED`, also counting what is untracked only for now: lists (our
/// arrays) and records (composite values) that the decoder built and tracks when the result
/// completes, and dicts (tracked again when a container is stored in them).
fn may_join_cycle(py: Python<'_>, obj: *mut ffi::PyObject) -> bool {
    // SAFETY: `obj` is a live object; these only read its type and GC header, and a record's
    // mask once its type is checked.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        if ffi::PyType_IS_GC(ty) == 0 {
            return false;
        }
        // Since CPython 3.13 `Decimal` is a heap type, so its instances are GC objects; they
        // refer to nothing but their type, so no cycle can pass through one.
        if let Ok(decimal) = pycache::decimal(py) {
            if std::ptr::eq(ty, decimal.as_type_ptr()) {
                return false;
            }
        }
        if ffi::PyObject_GC_IsTracked(obj) != 0
            || ffi::PyList_Check(obj) != 0
            || ffi::PyDict_Check(obj) != 0
        {
            return true;
        }
        std::ptr::eq(ty, Record::type_object_raw(py))
            && Borrowed::from_ptr(py, obj)
                .cast_unchecked::<Record>()
                .get()
                .is_cyclic()
    }
}

/// Tracks a GC object unless it already is (tracking twice is a fatal error).
fn track(obj: *mut ffi::PyObject) {
    // SAFETY: `obj` is a live GC object.
    unsafe {
        if ffi::PyObject_GC_IsTracked(obj) == 0 {
            ffi::PyObject_GC_Track(obj.cast());
        }
    }
}

/// Tracks what the decoder built untracked inside a value: array lists and the records of
/// composite values (those that may take part in a cycle), however deeply nested. Only exact
/// lists and records are looked into (a type-pointer comparison per item), so the integers of
/// an int array cost next to nothing here.
fn track_row(row: &Bound<'_, PyAny>, record_type: *mut ffi::PyTypeObject) {
    let Ok(record) = row.cast::<Record>() else {
        return;
    };
    let exact = std::ptr::eq(row.get_type_ptr(), record_type);
    let record = record.get();
    if exact && !record.is_cyclic() {
        return;
    }
    track_values(record, record_type);
    if exact {
        track(row.as_ptr());
    }
}

pub(crate) fn track_lists(obj: *mut ffi::PyObject) {
    // SAFETY: the caller holds the GIL (it is decoding).
    let record_type = Record::type_object_raw(unsafe { Python::assume_attached() });
    if is_container(obj, record_type) {
        track_nested(obj, record_type);
    }
}

fn track_values(record: &Record, record_type: *mut ffi::PyTypeObject) {
    for v in record.cycle_candidates() {
        if is_container(v.as_ptr(), record_type) {
            track_nested(v.as_ptr(), record_type);
        }
    }
}

fn track_nested(obj: *mut ffi::PyObject, record_type: *mut ffi::PyTypeObject) {
    // SAFETY: `obj` is a live list or record; a list's items and a record's values are live
    // while it is.
    unsafe {
        if ffi::PyObject_GC_IsTracked(obj) != 0 {
            return;
        }
        if std::ptr::eq(ffi::Py_TYPE(obj), std::ptr::addr_of_mut!(ffi::PyList_Type)) {
            // An untracked list is an array's, and uniform: each item is None or comes from
            // the array's element codec (above the innermost dimension, each is a list). So the
            // first other item tells whether any can be a list or record of ours, and the
            // items of a list of numbers or strings need not be read one by one.
            let n = ffi::PyList_GET_SIZE(obj);
            let first = (0..n)
                .map(|i| ffi::PyList_GET_ITEM(obj, i))
                .find(|&item| !std::ptr::eq(item, ffi::Py_None()));
            if first.is_some_and(|item| is_container(item, record_type)) {
                for i in 0..n {
                    let item = ffi::PyList_GET_ITEM(obj, i);
                    if is_container(item, record_type) {
                        track_nested(item, record_type);
                    }
                }
            }
            ffi::PyObject_GC_Track(obj.cast());
        } else {
            let record = Bound::from_borrowed_ptr(Python::assume_attached(), obj)
                .cast_into_unchecked::<Record>();
            let record = record.get();
            if record.is_cyclic() {
                track_values(record, record_type);
                ffi::PyObject_GC_Track(obj.cast());
            }
        }
    }
}

/// Makes the collector call [`traverse_record`] for records.
///
/// A collection after a large result traverses every row twice, and PyO3's generic
/// `tp_traverse` trampoline (panic trap, attach guard, super-type lookup, borrow guard) cost
/// several times the visits themselves there. Python subclasses (`record_class`) keep
/// CPython's `subtype_traverse`, which finds this function through `tp_base` when it runs.
pub fn install_traverse(py: Python<'_>) {
    let ty = Record::type_object_raw(py);
    // SAFETY: the type is initialised and ours; the collector reads the slot on every call.
    unsafe { (*ty).tp_traverse = Some(traverse_record) };
}

/// `tp_traverse` of `Record`: the type (instances of heap types hold a reference to it) and
/// the values its [`Record::cycle_mask`] names that are GC objects; the others (ints,
/// strings, UUIDs, ...) can never be in a cycle.
unsafe extern "C" fn traverse_record(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut std::ffi::c_void,
) -> std::ffi::c_int {
    // SAFETY: the collector calls this with a live `Record` (or subclass) instance and the
    // GIL held; only pointers are read, no reference count changes and no Python code runs.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        let r = visit(ty.cast(), arg);
        if r != 0 {
            return r;
        }
        let py = Python::assume_attached();
        let record = Borrowed::from_ptr(py, obj).cast_unchecked::<Record>();
        for v in record.get().cycle_candidates() {
            let p = v.as_ptr();
            if ffi::PyType_IS_GC(ffi::Py_TYPE(p)) != 0 {
                let r = visit(p, arg);
                if r != 0 {
                    return r;
                }
            }
        }
    }
    0
}

/// An exact list or record: the only things the decoder builds untracked.
#[inline]
fn is_container(obj: *mut ffi::PyObject, record_type: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: reads the type pointer of a live object.
    let ty = unsafe { ffi::Py_TYPE(obj) };
    std::ptr::eq(ty, std::ptr::addr_of_mut!(ffi::PyList_Type)) || std::ptr::eq(ty, record_type)
}

#[pymethods]
impl Record {
    /// Builds a record of a `record_class`; only the driver calls this (records cannot be
    /// made by users, as in asyncpg).
    #[new]
    #[pyo3(signature = (desc=None, values=None))]
    fn __new__(
        py: Python<'_>,
        desc: Option<Py<RecordDesc>>,
        values: Option<Vec<Py<PyAny>>>,
    ) -> PyResult<Self> {
        let (Some(desc), Some(values)) = (desc, values) else {
            return Err(PyTypeError::new_err(
                "cannot create 'pgoxide.Record' instances",
            ));
        };
        let mut stored = Values::with_capacity(py, values.len())?;
        for v in values {
            stored.push(v);
        }
        // Any value of a GC type: these may come from anywhere, and an instance is tracked
        // from the start anyway.
        // SAFETY: reads the types of live objects.
        let cycle_mask = cycle_mask(&stored, |v| unsafe {
            ffi::PyType_IS_GC(ffi::Py_TYPE(v)) != 0
        });
        Ok(Self {
            desc,
            values: stored,
            cycle_mask,
        })
    }

    /// Lets the garbage collector see the values (a list value may be part of a cycle).
    ///
    /// Declaring it makes the type a GC type; [`install_traverse`] then replaces PyO3's
    /// trampoline for it with [`traverse_record`], which does the same with less work.
    #[allow(clippy::needless_pass_by_value)] // PyO3 passes the visitor by value.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.desc)?;
        for v in self.values.iter() {
            visit.call(v)?;
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.values.len()
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(slice) = key.cast::<PySlice>() {
            let idx = slice.indices(self.values.len() as isize)?;
            let items: Vec<&Py<PyAny>> = (0..idx.slicelength)
                .map(|k| &self.values[(idx.start + k as isize * idx.step) as usize])
                .collect();
            return Ok(PyTuple::new(py, items)?.into_any().unbind());
        }
        match self.position(py, key)? {
            Some(i) => Ok(self.values[i].clone_ref(py)),
            None if key.is_instance_of::<PyString>() => {
                Err(PyKeyError::new_err(key.clone().unbind()))
            }
            None => Err(PyIndexError::new_err("record index out of range")),
        }
    }

    #[pyo3(signature = (key, default=None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.position(py, key)? {
            Some(i) => Ok(self.values[i].clone_ref(py)),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.desc
            .get()
            .names
            .bind(py)
            .as_any()
            .try_iter()
            .map(Bound::into_any)
    }

    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.values_tuple(py)?
            .as_any()
            .try_iter()
            .map(Bound::into_any)
    }

    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let names = self.desc.get().names.bind(py);
        let pairs = PyList::empty(py);
        for (name, value) in names.iter().zip(self.values.iter()) {
            pairs.append((name, value.bind(py)))?;
        }
        pairs.as_any().try_iter().map(Bound::into_any)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.values(py)
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.desc.get().index.bind(py).contains(key)
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let mine = self.values_tuple(py)?;
        let theirs = if let Ok(rec) = other.cast::<Record>() {
            rec.get().values_tuple(py)?.into_any()
        } else if other.is_instance_of::<PyTuple>() {
            other.clone()
        } else {
            return Ok(py.NotImplemented());
        };
        Ok(mine.rich_compare(theirs, op)?.unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.values_tuple(py)?.hash()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.get();
        let names = this.desc.get().names.bind(py);
        // A record_class's instances show its name, as in asyncpg.
        let mut out = format!("<{}", slf.get_type().name()?);
        for (name, value) in names.iter().zip(this.values.iter()) {
            out.push(' ');
            out.push_str(&name.str()?.to_cow()?);
            out.push('=');
            out.push_str(&value.bind(py).repr()?.to_cow()?);
        }
        out.push('>');
        Ok(out)
    }
}
