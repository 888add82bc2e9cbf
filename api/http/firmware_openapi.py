"""The OpenAPI description of the firmware and rollout routes (``api.http.firmware``).

Their bodies hold lists (waves, machines, tags) and files, which the spec tables
of ``api.http.specs`` do not describe; the services check them and the schemas
are written here. ``BODIES`` names these routes.
"""

from typing import Any

from api.http.openapi import BEARER, JSON, MID, _errors, _int, _obj, _op, _str

BODIES = {
    ("post", "/api/firmware"),
    ("post", "/api/rollouts"),
    ("put", "/api/machine/{mid}/tags"),
}
VERSION = {"name": "version", "in": "path", "required": True, "schema": _str(32)}
FILE_PATH = {"name": "path", "in": "path", "required": True, "schema": _str(200)}
ROLLOUT_ID = {"name": "rid", "in": "path", "required": True, "schema": _str(40)}
MACHINE_STATUS = [
    "queued",
    "sent",
    "downloading",
    "installing",
    "succeeded",
    "failed",
    "rejected",
    "timed_out",
    "canceled",
]
RELEASE = _obj(
    {
        "version": _str(32),
        "signature": _str(128, 128),
        "key": _str(64, 64),
        "total_bytes": _int(),
        "file_count": _int(1),
        "created_at": _int(),
        "created_by": {"type": ["string", "null"]},
    }
)
ROLLOUT = _obj(
    {
        "rollout_id": {"type": "string"},
        "version": {"type": "string"},
        "status": {"enum": ["running", "paused", "finished", "aborted"]},
        "wave": _int(1),
        "waves": {"type": "array", "items": _int(1, 100)},
        "max_failure_pct": {"type": "number"},
        "deadline_s": _int(1),
        "created_at": _int(),
        "machines": {
            "type": "array",
            "items": _obj(
                {
                    "machine_id": {"type": "string"},
                    "status": {"enum": MACHINE_STATUS},
                    "error": {"type": ["string", "null"]},
                    "wave": _int(1),
                    "progress": {
                        "oneOf": [{"type": "null"}, _obj({"bytes": _int(), "total": _int()})]
                    },
                }
            ),
        },
    }
)
NEW_ROLLOUT = _obj(
    {
        "version": _str(32),
        "target": {
            "oneOf": [
                {"const": "all"},
                _obj({"machines": {"type": "array", "items": _str(32)}}),
                _obj({"tag": _str(64)}),
            ]
        },
        "waves": {
            "type": "array",
            "items": _int(1, 100),
            "description": "cumulative percentages of the target, increasing, ending at 100",
        },
        "max_failure_pct": {"type": "number", "minimum": 0, "maximum": 100},
        "deadline_s": _int(1),
    },
    ["version"],
)
MACHINE_AUTH = {
    "name": "X-Machine-Id",
    "in": "header",
    "required": True,
    "schema": _str(32, pattern="^[A-Za-z0-9_-]{1,32}$"),
    "description": "The machine whose API key is the bearer token (or ?machine_id=)",
}
RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "example": "bytes=65536-"},
}


def _admin(summary: str, ok: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return _op(summary, ok, auth=True, tag="firmware", **kw)


def _with_body(op: dict[str, Any], media: str, schema: dict[str, Any]) -> dict[str, Any]:
    op["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
    op["responses"].update(_errors(400, 413))
    return op


def firmware_paths() -> dict[str, Any]:
    upload = _obj(
        {
            "manifest": {"type": "string", "contentMediaType": "application/json"},
            "signature": _str(128, 128),
            "files": {
                "type": "array",
                "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                "description": "each file's part named by its manifest path (its filename)",
            },
        }
    )
    rollout_action = {"post": _admin("", ROLLOUT, params=[ROLLOUT_ID], errors=(400, 404))}
    resume = {"post": {**rollout_action["post"], "summary": "Resume a paused rollout (next wave)"}}
    abort = {"post": {**rollout_action["post"], "summary": "Abort: cancel what was not sent"}}
    download = {
        "summary": "A release file (machine key); one byte range answered 206",
        "tags": ["device"],
        "parameters": [VERSION, FILE_PATH, MACHINE_AUTH, RANGE],
        "security": BEARER,
        "responses": {
            "200": {
                "description": "the whole file",
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            },
            "206": {
                "description": "the range, with Content-Range",
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            },
            **_errors(401, 404, 416),
        },
    }
    return {
        "/api/firmware": {
            "get": _admin("Releases", _obj({"releases": {"type": "array", "items": RELEASE}})),
            "post": _with_body(
                _admin(
                    "Upload a signed release (up to FIRMWARE_MAX_BYTES); "
                    "400 bad_signature when no configured public key verifies it",
                    RELEASE,
                    status=201,
                    errors=(409,),
                ),
                "multipart/form-data",
                upload,
            ),
        },
        "/api/firmware/{version}/manifest": {
            "get": {
                "summary": "A release's manifest, its exact signed bytes (machine key)",
                "tags": ["device"],
                "parameters": [VERSION, MACHINE_AUTH],
                "security": BEARER,
                "responses": {
                    "200": {"description": "manifest", "content": {JSON: {"schema": {}}}},
                    **_errors(401, 404),
                },
            }
        },
        "/api/firmware/{version}/files/{path}": {"get": download},
        "/api/rollouts": {
            "get": _admin("Rollouts", _obj({"rollouts": {"type": "array"}})),
            "post": _with_body(
                _admin(
                    "Roll a release out in waves",
                    _obj({"rollout_id": {"type": "string"}}),
                    status=201,
                    errors=(404,),
                ),
                JSON,
                NEW_ROLLOUT,
            ),
        },
        "/api/rollouts/{rid}": {
            "get": _admin("A rollout and its machines", ROLLOUT, params=[ROLLOUT_ID], errors=(404,))
        },
        "/api/rollouts/{rid}/resume": resume,
        "/api/rollouts/{rid}/abort": abort,
        "/api/machine/{mid}/tags": {
            "put": _with_body(
                _admin(
                    "Set a machine's tags (rollout targets)",
                    _obj({"machine_id": {"type": "string"}, "tags": {"type": "array"}}),
                    params=[MID],
                    errors=(404,),
                ),
                JSON,
                _obj({"tags": {"type": "array", "items": _str(64), "maxItems": 20}}),
            )
        },
    }
