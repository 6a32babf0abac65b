"""Garbage through the pgoutput decoder: a message, a protocol error (malformed message) or
a DataError (a well-formed value its type cannot read), never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pgoxide import exceptions
from pgoxide import replication as r

pytestmark = pytest.mark.unit

_TAGS = b"BCORYIUDTMSEcAbPKrp"


def _decode(decoder: r.PgOutputDecoder, data: bytes) -> None:
    try:
        message = decoder.decode(data)
    except (exceptions.ProtocolError, exceptions.DataError):
        return
    repr(message)  # whatever decoded must be a complete object


# Relation 7 = s.t with one int4 column "id", replica identity default.
_RELATION = (
    b"R"
    + (7).to_bytes(4, "big")
    + b"s\x00t\x00d"
    + (1).to_bytes(2, "big")
    + b"\x01id\x00"
    + (23).to_bytes(4, "big")
    + (-1).to_bytes(4, "big", signed=True)
)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    _decode(r.PgOutputDecoder(), data)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(list(_TAGS)), st.binary(max_size=96), st.booleans())
def test_random_bodies_after_every_tag(tag: int, body: bytes, parallel: bool) -> None:
    _decode(r.PgOutputDecoder(parallel=parallel), bytes([tag]) + body)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=48), max_size=12))
def test_random_sequences_through_one_decoder(payloads: list[bytes]) -> None:
    # A Relation followed by garbage changes for it, and stream starts/stops in between.
    decoder = r.PgOutputDecoder()
    decoder.decode(_RELATION)
    for payload in payloads:
        _decode(decoder, b"I" + (7).to_bytes(4, "big") + b"N" + payload)
        _decode(decoder, payload)


def test_a_valid_message_still_decodes() -> None:
    decoder = r.PgOutputDecoder()
    begin = decoder.decode(b"B" + (0x100).to_bytes(8, "big") + bytes(8) + (5).to_bytes(4, "big"))
    assert isinstance(begin, r.Begin) and begin.xid == 5 and int(begin.final_lsn) == 0x100
    with pytest.raises(exceptions.ProtocolError, match="unknown pgoutput message type"):
        decoder.decode(b"Z")
    decoder.decode(_RELATION)
    with pytest.raises(exceptions.DataError, match=r'column "id" of s\.t'):
        decoder.decode(b"I" + (7).to_bytes(4, "big") + b"N\x00\x01t\x00\x00\x00\x03abc")
