"""Firmware update commands and their results on the wire (contract section 6).

The machine's half of the update contract, apart from :mod:`schema.wire` so that a
machine imports it only when an update command arrives (its heap between two
updates does not carry it). An update command shares the ``cmd`` topic with
dispense commands (the controller tries a dispense command first), and
its ``running`` results add ``progress`` to the ``results`` fields. Checked and
encoded by the same tables and code as every other kind (see :mod:`schema.wire`).

Portable and small, like :mod:`schema.wire`.
"""

from schema import topics, wire

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any

    from schema.wire import Kind

wire.CHARS["hex"] = "0123456789abcdef"
wire.CHARS["version"] = topics._ID_CHARS + ".+"
VERSION = ("str", False, 1, 32, "version")
PROGRESS = (
    "obj",
    False,
    (
        ("stage", ("enum", False, ("download", "verify", "install")), True),
        ("bytes", wire._INT, True),
        ("total", wire._INT, True),
    ),
)
ERRORS = (
    "busy",
    "bad_signature",
    "downgrade",
    "same_version",
    "no_space",
    "hash_mismatch",
    "download_failed",
    "rolled_back",
)
SPECS: "dict[str, Kind]" = {
    "update": (
        (
            ("cmd_id", wire._CMD_ID, True),
            ("action", ("enum", False, ("update",)), True),
            (
                "firmware",
                (
                    "obj",
                    False,
                    (
                        ("version", VERSION, True),
                        ("manifest_url", ("str", False, 1, 512, None), True),
                        ("signature", ("str", False, 128, 128, "hex"), True),
                    ),
                ),
                True,
            ),
            ("issued_at", wire._TIME, True),
            ("expires_at", wire._TIME, True),
        ),
        (),
        None,
    ),
    "update_result": (wire.SPECS["results"][0] + (("progress", PROGRESS, False),), (), None),
}


def encode_update(obj: "dict[str, Any]") -> bytes:
    """An update command (the server sends it on ``cmd/{cmd_id}``)."""
    return wire.encode_in(SPECS, "update", obj)


def decode_update(payload: bytes) -> "dict[str, Any]":
    """Parse and check an update command; unknown fields are dropped."""
    return wire.decode_in(SPECS, "update", payload)


def encode_update_result(obj: "dict[str, Any]") -> bytes:
    """A result of an update command: ``results`` plus an optional ``progress``."""
    return wire.encode_in(SPECS, "update_result", obj)


def decode_update_result(payload: bytes) -> "dict[str, Any]":
    """:func:`encode_update_result`'s payload, checked (``progress`` kept)."""
    return wire.decode_in(SPECS, "update_result", payload)
