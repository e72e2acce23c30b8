"""The benchmark's MongoDB-wire proxy names each command, its collection and the documents a write carries."""

from __future__ import annotations

import struct

import bson

from bench.wire_proxy import command_of


def op_msg(command: dict, sequence: tuple[str, list[dict]] | None = None, *, checksum: bool = False) -> bytes:
    body = struct.pack("<I", 1 if checksum else 0) + b"\0" + bson.encode(command)
    if sequence is not None:
        name, docs = sequence
        payload = name.encode() + b"\0" + b"".join(bson.encode(d) for d in docs)
        body += b"\1" + struct.pack("<i", 4 + len(payload)) + payload
    return body + (b"\0\0\0\0" if checksum else b"")


def test_a_command_document_names_the_command_and_its_collection() -> None:
    assert command_of(op_msg({"find": "messages", "filter": {}, "$db": "relay"})) == ("find", "messages", 0)
    assert command_of(op_msg({"ping": 1, "$db": "admin"})) == ("ping", "", 0)


def test_writes_count_their_documents_inline_or_in_a_sequence() -> None:
    inline = {"update": "conversations", "updates": [{"q": {}, "u": {}}, {"q": {}, "u": {}}], "$db": "relay"}
    assert command_of(op_msg(inline)) == ("update", "conversations", 2)
    bulk = op_msg({"insert": "messages", "$db": "relay"}, ("documents", [{"a": 1}, {"a": 2}, {"a": 3}]), checksum=True)
    assert command_of(bulk) == ("insert", "messages", 3)
