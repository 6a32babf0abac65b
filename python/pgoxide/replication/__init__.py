"""Logical replication: replication connections, slots, a stream consumer that keeps up with
a busy server, and pgoutput (protocol versions 1 to 4) decoded in Rust.

    conn = await pgoxide.replication.connect_replication(dsn)
    slot = await conn.create_replication_slot("cdc", temporary=True)
    stream = await conn.start_replication(
        "cdc", slot.consistent_point, {"proto_version": 4, "publication_names": "pub"}
    )
    async for item in stream:
        match item.message:  # XLogData.message; Keepalive items have none
            case pgoxide.replication.Insert(relation=rel, new=row): ...
            case pgoxide.replication.Commit(end_lsn=end): stream.ack(end)

Change messages (Insert, Update, Delete, Truncate) carry their Relation (schema, table,
columns with key flags), the rows as Records addressable by column name, and the
transaction's commit position and time (None inside streamed or prepared transactions,
whose Stream Commit / Commit Prepared tells them). An unchanged TOASTed value is
:data:`UNCHANGED`, never None. ``python -m pgoxide.replication`` streams a publication as
JSON lines.
"""

from __future__ import annotations

from typing import Union

from .._pgoxide import (
    UNCHANGED,
    Begin,
    BeginPrepare,
    Commit,
    CommitPrepared,
    Delete,
    Insert,
    Keepalive,
    LogicalMessage,
    Origin,
    PgOutputDecoder,
    Prepare,
    Relation,
    RelationColumn,
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    TypeDefinition,
    UnchangedToast,
    Update,
    XLogData,
)
from ..types import Lsn
from .connection import (
    ReplicationConnection,
    ReplicationSlot,
    ReplicationStream,
    SystemInfo,
    connect_replication,
)

__all__ = [
    "UNCHANGED",
    "Begin",
    "BeginPrepare",
    "Change",
    "Commit",
    "CommitPrepared",
    "Delete",
    "Insert",
    "Keepalive",
    "LogicalMessage",
    "Lsn",
    "Origin",
    "PgOutputDecoder",
    "Prepare",
    "Relation",
    "RelationColumn",
    "ReplicationConnection",
    "ReplicationSlot",
    "ReplicationStream",
    "RollbackPrepared",
    "StreamAbort",
    "StreamCommit",
    "StreamPrepare",
    "StreamStart",
    "StreamStop",
    "SystemInfo",
    "Truncate",
    "TypeDefinition",
    "UnchangedToast",
    "Update",
    "XLogData",
    "connect_replication",
    "decode_pgoutput",
]

#: The row changes a CDC consumer applies.
Change = Union[Insert, Update, Delete, Truncate]


def decode_pgoutput(data: bytes | XLogData, decoder: PgOutputDecoder | None = None) -> object:
    """Decodes one pgoutput message (an XLogData or its payload).

    Changes refer to relations by the Relation messages decoded before them, so decode a
    stream's messages in order with one :class:`PgOutputDecoder`; without one, a fresh
    decoder is used, which can decode any message but a change."""
    payload = data.data if isinstance(data, XLogData) else bytes(data)
    return (decoder or PgOutputDecoder()).decode(payload)
