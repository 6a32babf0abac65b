//! pgoutput messages as Python objects: the message classes, and the decoder that keeps the
//! relation cache and decodes each tuple's values with the connection's type codecs.

use std::collections::HashMap;
use std::sync::Arc;

use pgoxide_proto::pgoutput::{self, Message, OldTuple, TupleData, Value};
use pgoxide_proto::types::{self, Oid};
use pgoxide_proto::Error;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::{opt_lsn, opt_time, raw, unchanged};
use crate::codec::{text, Codec, Resolver};
use crate::errors::{data_error, to_pyerr};
use crate::record::{Record, RecordDesc, Values};
use crate::registry::{Registry, TypeKind};

/// One column of a published table.
#[pyclass(frozen, get_all, module = "pgoxide.replication")]
pub struct RelationColumn {
    name: String,
    type_oid: u32,
    type_modifier: i32,
    /// Part of the replica identity key.
    is_key: bool,
}

#[pymethods]
impl RelationColumn {
    fn __repr__(&self) -> String {
        format!(
            "<RelationColumn {} oid={}{}>",
            self.name,
            self.type_oid,
            if self.is_key { " key" } else { "" }
        )
    }
}

/// A published table as its last Relation message described it.
#[pyclass(frozen, get_all, module = "pgoxide.replication")]
pub struct Relation {
    oid: u32,
    schema: String,
    table: String,
    /// `'d'` default, `'n'` nothing, `'f'` full, `'i'` index.
    replica_identity: String,
    columns: Py<PyTuple>,
    /// Set inside a streamed transaction.
    xid: Option<u32>,
}

#[pymethods]
impl Relation {
    fn __repr__(&self) -> String {
        format!("<Relation {}.{} oid={}>", self.schema, self.table, self.oid)
    }
}

/// Declares a pgoutput message class: plain fields, and LSN/time fields turned into `Lsn`
/// and `datetime` objects when read.
macro_rules! message_class {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $field:ident : $ty:ty ),* $(,)?
        }
        lsn { $( $lsn:ident ),* $(,)? }
        time { $( $time:ident ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[pyclass(frozen, module = "pgoxide.replication")]
        #[allow(clippy::struct_field_names)]
        pub struct $name {
            $( #[pyo3(get)] $field: $ty, )*
            $( $lsn: Option<u64>, )*
            $( $time: Option<i64>, )*
        }

        #[pymethods]
        impl $name {
            $(
                #[getter]
                fn $lsn<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                    opt_lsn(py, self.$lsn)
                }
            )*
            $(
                #[getter]
                fn $time<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
                    opt_time(py, self.$time)
                }
            )*

            #[allow(unused_mut, unused_variables)]
            fn __repr__(&self, py: Python<'_>) -> String {
                let mut parts: Vec<String> = Vec::new();
                $(
                    parts.push(format!(
                        "{}={}",
                        stringify!($field),
                        (&self.$field).into_pyobject(py)
                            .ok()
                            .and_then(|v| v.repr().ok())
                            .map_or_else(|| "?".into(), |r| r.to_string())
                    ));
                )*
                $(
                    if let Some(v) = self.$lsn {
                        parts.push(format!(
                            "{}={}",
                            stringify!($lsn),
                            pgoxide_proto::replication::Lsn(v)
                        ));
                    }
                )*
                format!("<{} {}>", stringify!($name), parts.join(" "))
            }
        }
    };
}

message_class! {
    /// Start of a transaction; its changes carry its commit position and time.
    Begin { xid: u32 }
    lsn { final_lsn }
    time { commit_time }
}

message_class! {
    /// End of a transaction: acknowledge `end_lsn` once its changes are durable downstream.
    Commit {}
    lsn { commit_lsn, end_lsn }
    time { commit_time }
}

message_class! {
    /// The replication origin of the transaction's changes.
    Origin { name: String }
    lsn { lsn }
    time {}
}

message_class! {
    /// A user-defined type used by a published column (a domain gives its base type's name).
    TypeDefinition { oid: u32, schema: String, name: String, xid: Option<u32> }
    lsn {}
    time {}
}

message_class! {
    /// A row inserted; `new` is a Record addressable by column name.
    Insert { relation: Py<Relation>, new: Py<PyAny>, xid: Option<u32> }
    lsn { commit_lsn }
    time { commit_time }
}

message_class! {
    /// A row updated. `old` is the replica identity key (`old_kind == 'key'`, other columns
    /// None) or the whole old row (`'full'`), or None when the server sent neither.
    Update {
        relation: Py<Relation>,
        old: Option<Py<PyAny>>,
        old_kind: Option<&'static str>,
        new: Py<PyAny>,
        xid: Option<u32>,
    }
    lsn { commit_lsn }
    time { commit_time }
}

message_class! {
    /// A row deleted; `old` as for Update (never None).
    Delete {
        relation: Py<Relation>,
        old: Py<PyAny>,
        old_kind: &'static str,
        xid: Option<u32>,
    }
    lsn { commit_lsn }
    time { commit_time }
}

message_class! {
    /// Tables truncated.
    Truncate {
        relations: Py<PyTuple>,
        cascade: bool,
        restart_identity: bool,
        xid: Option<u32>,
    }
    lsn { commit_lsn }
    time { commit_time }
}

message_class! {
    /// A `pg_logical_emit_message` message (with the `messages` option).
    LogicalMessage { transactional: bool, prefix: String, content: Py<PyBytes>, xid: Option<u32> }
    lsn { lsn }
    time {}
}

message_class! {
    /// A chunk of a large in-progress transaction begins (streaming).
    StreamStart { xid: u32, first_segment: bool }
    lsn {}
    time {}
}

message_class! {
    /// The current streamed chunk ends.
    StreamStop {}
    lsn {}
    time {}
}

message_class! {
    /// A streamed transaction committed.
    StreamCommit { xid: u32 }
    lsn { commit_lsn, end_lsn }
    time { commit_time }
}

message_class! {
    /// A streamed (sub)transaction aborted; `abort_lsn`/`abort_time` under streaming=parallel.
    StreamAbort { xid: u32, subxid: u32 }
    lsn { abort_lsn }
    time { abort_time }
}

message_class! {
    /// A two-phase transaction begins.
    BeginPrepare { xid: u32, gid: String }
    lsn { prepare_lsn, end_lsn }
    time { prepare_time }
}

message_class! {
    /// PREPARE TRANSACTION.
    Prepare { xid: u32, gid: String }
    lsn { prepare_lsn, end_lsn }
    time { prepare_time }
}

message_class! {
    /// PREPARE TRANSACTION of a streamed transaction.
    StreamPrepare { xid: u32, gid: String }
    lsn { prepare_lsn, end_lsn }
    time { prepare_time }
}

message_class! {
    /// COMMIT PREPARED.
    CommitPrepared { xid: u32, gid: String }
    lsn { commit_lsn, end_lsn }
    time { commit_time }
}

message_class! {
    /// ROLLBACK PREPARED.
    RollbackPrepared { xid: u32, gid: String }
    lsn { prepare_end_lsn, rollback_end_lsn }
    time { prepare_time, rollback_time }
}

// -- decoding ------------------------------------------------------------------------------

/// A relation and what decoding its tuples needs.
struct RelationEntry {
    py: Py<Relation>,
    desc: Py<RecordDesc>,
    /// Per column: the OID text values are transcoded by (domains followed to their base),
    /// and the codec of its binary form.
    columns: Vec<(Oid, Codec)>,
}

/// Stateful pgoutput decoding into Python objects.
pub struct ChangeDecoder {
    decoder: pgoutput::Decoder,
    registry: Arc<Registry>,
    relations: HashMap<u32, Arc<RelationEntry>>,
    /// Relations sent inside a streamed transaction, adopted on its Stream Commit.
    staged: HashMap<u32, HashMap<u32, Arc<RelationEntry>>>,
    /// The open (non-streamed) transaction's commit position and time, from its Begin.
    commit: Option<(u64, i64)>,
    /// Values as sent (text as `str`, binary as `bytes`) instead of decoded by type.
    raw_values: bool,
    scratch: Vec<u8>,
}

impl ChangeDecoder {
    pub fn new(registry: Arc<Registry>, parallel: bool, raw_values: bool) -> Self {
        Self {
            decoder: pgoutput::Decoder::new(parallel),
            registry,
            relations: HashMap::new(),
            staged: HashMap::new(),
            commit: None,
            raw_values,
            scratch: Vec::new(),
        }
    }

    fn relation(&self, xid: Option<u32>, oid: u32) -> Result<&Arc<RelationEntry>, Error> {
        xid.and_then(|x| self.staged.get(&x))
            .and_then(|m| m.get(&oid))
            .or_else(|| self.relations.get(&oid))
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "change for relation {oid} before its Relation message"
                ))
            })
    }

    /// The transaction fields a change carries: the commit of the enclosing Begin, unless
    /// the change is streamed (its commit is not known yet).
    fn commit_of(&self, xid: Option<u32>) -> (Option<u64>, Option<i64>) {
        match (xid, self.commit) {
            (None, Some((lsn, time))) => (Some(lsn), Some(time)),
            _ => (None, None),
        }
    }

    /// Decodes one pgoutput message. Malformed bytes are a protocol error; a value that
    /// cannot be converted is a DataError.
    pub fn decode(&mut self, py: Python<'_>, payload: &[u8]) -> PyResult<Py<PyAny>> {
        let message = self.decoder.decode(payload).map_err(|e| to_pyerr(py, &e))?;
        self.convert(py, message)
    }

    fn convert(&mut self, py: Python<'_>, message: Message<'_>) -> PyResult<Py<PyAny>> {
        let obj = match message {
            Message::Begin {
                final_lsn,
                commit_time,
                xid,
            } => {
                self.commit = Some((final_lsn, commit_time));
                Py::new(
                    py,
                    Begin {
                        xid,
                        final_lsn: Some(final_lsn),
                        commit_time: Some(commit_time),
                    },
                )?
                .into_any()
            }
            Message::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
            } => {
                self.commit = None;
                Py::new(
                    py,
                    Commit {
                        commit_lsn: Some(commit_lsn),
                        end_lsn: Some(end_lsn),
                        commit_time: Some(commit_time),
                    },
                )?
                .into_any()
            }
            Message::Origin { lsn, name } => Py::new(
                py,
                Origin {
                    name: name.to_owned(),
                    lsn: Some(lsn),
                },
            )?
            .into_any(),
            Message::Relation(r) => self.on_relation(py, &r)?,
            Message::Type {
                xid,
                oid,
                namespace,
                name,
            } => Py::new(
                py,
                TypeDefinition {
                    oid,
                    schema: schema_name(namespace),
                    name: name.to_owned(),
                    xid,
                },
            )?
            .into_any(),
            Message::Insert { xid, relation, new } => {
                let entry = self
                    .relation(xid, relation)
                    .map_err(|e| to_pyerr(py, &e))?
                    .clone();
                let new = self.record(py, &entry, new)?;
                let (commit_lsn, commit_time) = self.commit_of(xid);
                Py::new(
                    py,
                    Insert {
                        relation: entry.py.clone_ref(py),
                        new,
                        xid,
                        commit_lsn,
                        commit_time,
                    },
                )?
                .into_any()
            }
            Message::Update {
                xid,
                relation,
                old,
                new,
            } => {
                let entry = self
                    .relation(xid, relation)
                    .map_err(|e| to_pyerr(py, &e))?
                    .clone();
                let (old, old_kind) = match old {
                    Some(o) => (Some(self.record(py, &entry, o.data())?), Some(kind(o))),
                    None => (None, None),
                };
                let new = self.record(py, &entry, new)?;
                let (commit_lsn, commit_time) = self.commit_of(xid);
                Py::new(
                    py,
                    Update {
                        relation: entry.py.clone_ref(py),
                        old,
                        old_kind,
                        new,
                        xid,
                        commit_lsn,
                        commit_time,
                    },
                )?
                .into_any()
            }
            Message::Delete { xid, relation, old } => {
                let entry = self
                    .relation(xid, relation)
                    .map_err(|e| to_pyerr(py, &e))?
                    .clone();
                let record = self.record(py, &entry, old.data())?;
                let (commit_lsn, commit_time) = self.commit_of(xid);
                Py::new(
                    py,
                    Delete {
                        relation: entry.py.clone_ref(py),
                        old: record,
                        old_kind: kind(old),
                        xid,
                        commit_lsn,
                        commit_time,
                    },
                )?
                .into_any()
            }
            Message::Truncate {
                xid,
                cascade,
                restart_identity,
                relations,
            } => {
                let mut rels = Vec::with_capacity(relations.len());
                for oid in relations {
                    let entry = self.relation(xid, oid).map_err(|e| to_pyerr(py, &e))?;
                    rels.push(entry.py.clone_ref(py));
                }
                let (commit_lsn, commit_time) = self.commit_of(xid);
                Py::new(
                    py,
                    Truncate {
                        relations: PyTuple::new(py, rels)?.unbind(),
                        cascade,
                        restart_identity,
                        xid,
                        commit_lsn,
                        commit_time,
                    },
                )?
                .into_any()
            }
            Message::Message {
                xid,
                transactional,
                lsn,
                prefix,
                content,
            } => Py::new(
                py,
                LogicalMessage {
                    transactional,
                    prefix: prefix.to_owned(),
                    content: PyBytes::new(py, content).unbind(),
                    xid,
                    lsn: Some(lsn),
                },
            )?
            .into_any(),
            Message::StreamStart { xid, first_segment } => {
                Py::new(py, StreamStart { xid, first_segment })?.into_any()
            }
            Message::StreamStop => Py::new(py, StreamStop {})?.into_any(),
            Message::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time,
            } => {
                // The relations this transaction described are now the current ones.
                if let Some(staged) = self.staged.remove(&xid) {
                    self.relations.extend(staged);
                }
                Py::new(
                    py,
                    StreamCommit {
                        xid,
                        commit_lsn: Some(commit_lsn),
                        end_lsn: Some(end_lsn),
                        commit_time: Some(commit_time),
                    },
                )?
                .into_any()
            }
            Message::StreamAbort { xid, subxid, abort } => {
                if xid == subxid {
                    self.staged.remove(&xid);
                }
                Py::new(
                    py,
                    StreamAbort {
                        xid,
                        subxid,
                        abort_lsn: abort.map(|a| a.0),
                        abort_time: abort.map(|a| a.1),
                    },
                )?
                .into_any()
            }
            Message::BeginPrepare(p) => Py::new(
                py,
                BeginPrepare {
                    xid: p.xid,
                    gid: p.gid.to_owned(),
                    prepare_lsn: Some(p.prepare_lsn),
                    end_lsn: Some(p.end_lsn),
                    prepare_time: Some(p.prepare_time),
                },
            )?
            .into_any(),
            Message::Prepare(p) => Py::new(
                py,
                Prepare {
                    xid: p.xid,
                    gid: p.gid.to_owned(),
                    prepare_lsn: Some(p.prepare_lsn),
                    end_lsn: Some(p.end_lsn),
                    prepare_time: Some(p.prepare_time),
                },
            )?
            .into_any(),
            Message::StreamPrepare(p) => {
                if let Some(staged) = self.staged.remove(&p.xid) {
                    self.relations.extend(staged);
                }
                Py::new(
                    py,
                    StreamPrepare {
                        xid: p.xid,
                        gid: p.gid.to_owned(),
                        prepare_lsn: Some(p.prepare_lsn),
                        end_lsn: Some(p.end_lsn),
                        prepare_time: Some(p.prepare_time),
                    },
                )?
                .into_any()
            }
            Message::CommitPrepared {
                commit_lsn,
                end_lsn,
                commit_time,
                xid,
                gid,
            } => Py::new(
                py,
                CommitPrepared {
                    xid,
                    gid: gid.to_owned(),
                    commit_lsn: Some(commit_lsn),
                    end_lsn: Some(end_lsn),
                    commit_time: Some(commit_time),
                },
            )?
            .into_any(),
            Message::RollbackPrepared {
                prepare_end_lsn,
                rollback_end_lsn,
                prepare_time,
                rollback_time,
                xid,
                gid,
            } => Py::new(
                py,
                RollbackPrepared {
                    xid,
                    gid: gid.to_owned(),
                    prepare_end_lsn: Some(prepare_end_lsn),
                    rollback_end_lsn: Some(rollback_end_lsn),
                    prepare_time: Some(prepare_time),
                    rollback_time: Some(rollback_time),
                },
            )?
            .into_any(),
        };
        Ok(obj)
    }

    /// Replaces the cached relation (or stages it for a streamed transaction).
    fn on_relation(&mut self, py: Python<'_>, r: &pgoutput::Relation<'_>) -> PyResult<Py<PyAny>> {
        let mut resolver = Resolver::new(&self.registry);
        let mut columns = Vec::with_capacity(r.columns.len());
        let mut py_columns = Vec::with_capacity(r.columns.len());
        let mut names = Vec::with_capacity(r.columns.len());
        for c in &r.columns {
            columns.push((
                text_oid(&self.registry, c.type_oid),
                resolver.codec(py, c.type_oid)?,
            ));
            names.push(c.name.to_owned());
            py_columns.push(Py::new(
                py,
                RelationColumn {
                    name: c.name.to_owned(),
                    type_oid: c.type_oid,
                    type_modifier: c.type_modifier,
                    is_key: c.is_key,
                },
            )?);
        }
        let relation = Py::new(
            py,
            Relation {
                oid: r.oid,
                schema: schema_name(r.namespace),
                table: r.name.to_owned(),
                replica_identity: char::from(r.replica_identity).to_string(),
                columns: PyTuple::new(py, py_columns)?.unbind(),
                xid: r.xid,
            },
        )?;
        let entry = Arc::new(RelationEntry {
            py: relation.clone_ref(py),
            desc: RecordDesc::new(py, &names)?,
            columns,
        });
        match r.xid {
            Some(xid) => {
                self.staged.entry(xid).or_default().insert(r.oid, entry);
            }
            None => {
                self.relations.insert(r.oid, entry);
            }
        }
        Ok(relation.into_any())
    }

    fn record(
        &mut self,
        py: Python<'_>,
        entry: &RelationEntry,
        tuple: TupleData<'_>,
    ) -> PyResult<Py<PyAny>> {
        if tuple.len() != entry.columns.len() {
            let e = Error::Protocol(format!(
                "tuple of {} columns for a relation of {}",
                tuple.len(),
                entry.columns.len()
            ));
            return Err(to_pyerr(py, &e));
        }
        let mut values = Values::with_capacity(py, tuple.len())?;
        for (i, (value, (oid, codec))) in tuple.values().zip(&entry.columns).enumerate() {
            let v = match value {
                Value::Null => py.None(),
                Value::Unchanged => unchanged(py)?.clone_ref(py).into_any(),
                Value::Binary(data) if self.raw_values => {
                    PyBytes::new(py, data).into_any().unbind()
                }
                Value::Text(data) if self.raw_values => text(py, data)?.unbind(),
                Value::Binary(data) => codec
                    .decode(py, data)
                    .map_err(|e| column_error(py, entry, i, &e))?
                    .unbind(),
                Value::Text(data) => self
                    .decode_text(py, *oid, codec, data)
                    .map_err(|e| column_error(py, entry, i, &e))?
                    .unbind(),
            };
            values.push(v);
        }
        let record = Record::create(py, entry.desc.clone_ref(py), values)?;
        Record::track_one(record.bind(py).as_any());
        Ok(record.into_any())
    }

    fn decode_text<'py>(
        &mut self,
        py: Python<'py>,
        oid: Oid,
        codec: &Codec,
        data: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        codec.decode_text(py, oid, data, &mut self.scratch)
    }
}

fn kind(old: OldTuple<'_>) -> &'static str {
    match old {
        OldTuple::Key(_) => "key",
        OldTuple::Full(_) => "full",
    }
}

/// pgoutput sends `""` for pg_catalog.
fn schema_name(namespace: &str) -> String {
    if namespace.is_empty() {
        "pg_catalog".to_owned()
    } else {
        namespace.to_owned()
    }
}

/// The OID whose text form a column's values have: a domain's base type.
fn text_oid(registry: &Registry, mut oid: Oid) -> Oid {
    for _ in 0..16 {
        match registry.types.get(&oid).map(|t| &t.kind) {
            Some(TypeKind::Domain { base }) => oid = *base,
            _ => break,
        }
    }
    oid
}

fn column_error(py: Python<'_>, entry: &RelationEntry, i: usize, e: &PyErr) -> PyErr {
    let relation = entry.py.get();
    let column = relation.columns.bind(py).get_item(i).ok();
    let name = column
        .and_then(|c| c.getattr("name").ok())
        .map_or_else(|| format!("#{i}"), |n| n.to_string());
    data_error(
        py,
        format!(
            "cannot decode column {name:?} of {}.{} ({}): {}",
            relation.schema,
            relation.table,
            types::name(entry.columns[i].0)
                .unwrap_or_else(|| format!("oid {}", entry.columns[i].0)),
            e.value(py)
        ),
    )
}

/// pgoutput decoding with its own relation cache, for users who read XLogData themselves.
#[pyclass(module = "pgoxide.replication")]
pub struct PgOutputDecoder {
    inner: ChangeDecoder,
}

#[pymethods]
impl PgOutputDecoder {
    /// `parallel`: the stream was started with `streaming=parallel`. `values`: `"typed"`
    /// decodes column values to Python objects by type; `"raw"` leaves them as sent (text
    /// as `str`, binary as `bytes`). `parse_json`: json and jsonb as Python objects instead
    /// of their text (as `connect(parse_json=True)`).
    #[new]
    #[pyo3(signature = (*, parallel=false, values="typed", parse_json=false))]
    fn new(parallel: bool, values: &str, parse_json: bool) -> PyResult<Self> {
        let mut registry = Registry::default();
        registry.options.parse_json = parse_json;
        Ok(Self {
            inner: ChangeDecoder::new(Arc::new(registry), parallel, raw(values)?),
        })
    }

    /// Decodes one pgoutput message (an XLogData payload).
    fn decode(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        self.inner.decode(py, data)
    }
}
