"""Firmware releases and rollouts over HTTP.

Admins list and upload releases (multipart: ``manifest``, ``signature`` and the
files, each file part named by its manifest path in its filename, or by its
basename when that is unique) and run rollouts. Machines download a release's
manifest and files with their own key: ``Authorization: Bearer <api key>`` and
their id in ``X-Machine-Id`` (or ``?machine_id=``). Files are streamed from the
database a chunk at a time, and a single byte range (``Range: bytes=a-b``,
``a-`` or ``-n``) is answered 206 with ``Content-Range`` (416 past the end).
"""

import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.errors import InvalidRequest, Unauthorized
from api.firmware import manifest as mf
from api.http import body as b
from api.http.auth import bearer
from api.http.deps import require, services, settings
from api.http.errors import error_response
from api.http.route_table import DEVICE, FIRMWARE, route
from api.http.shapes import (
    FILE_PATH,
    JSON,
    MACHINE_AUTH,
    MID,
    NEW_ROLLOUT,
    RANGE,
    RELEASE,
    RELEASE_UPLOAD,
    ROLLOUT,
    ROLLOUT_ID,
    STR,
    TAGS,
    VERSION,
    array,
    obj,
)
from api.services.firmware import Upload
from api.services.rights import Right
from schema import topics

# A release upload may be up to FIRMWARE_MAX_BYTES instead of MAX_BODY_BYTES.
UPLOAD = re.compile(r"/api/firmware|/admin/firmware")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def _machine(request: Request) -> str:
    mid = request.headers.get("x-machine-id") or request.query_params.get("machine_id", "")
    key = bearer(request)
    if not topics.is_machine_id(mid):
        raise Unauthorized("send the machine's id in X-Machine-Id")
    if not await services(request).machines.authenticate(mid, key):
        raise Unauthorized("wrong or revoked API key for this machine")
    return mid


async def release_form(request: Request) -> tuple[bytes, str, list[Upload], list[Any]]:
    """The manifest, signature and file readers of a multipart upload (and what to close)."""
    form = await request.form(max_files=mf.MAX_FILES + 2, max_fields=10)
    try:
        manifest_part = form.get("manifest")
        signature_part = form.get("signature")
        if manifest_part is None or signature_part is None:
            raise InvalidRequest("send manifest, signature and the release's files")
        manifest_bytes = (
            await manifest_part.read()
            if isinstance(manifest_part, UploadFile)
            else manifest_part.encode()
        )
        signature = (
            (await signature_part.read()).decode("ascii", "replace")
            if isinstance(signature_part, UploadFile)
            else signature_part
        )
        manifest = mf.parse(manifest_bytes)
        paths = [f.path for f in manifest.files]
        uploads: list[Upload] = []
        for name, part in form.multi_items():
            if name in ("manifest", "signature") or not isinstance(part, UploadFile):
                continue
            path = _path_of(part.filename or name, paths)
            uploads.append(Upload(path, part.read))
    except BaseException:
        await form.close()  # a refused upload leaves no temporary file behind
        raise
    return manifest_bytes, signature, uploads, [form]


def _path_of(given: str, paths: list[str]) -> str:
    if given in paths:
        return given
    base = given.replace("\\", "/").rsplit("/", 1)[-1]
    matches = [p for p in paths if p.rsplit("/", 1)[-1] == base]
    return matches[0] if len(matches) == 1 else given


async def list_releases(request: Request) -> Response:
    await require(request, Right.MACHINES)
    releases = await services(request).firmware.list()
    return JSONResponse({"releases": [r.as_json() for r in releases]})


async def add_release(request: Request) -> Response:
    actor = (await require(request, Right.MACHINES)).username
    manifest_bytes, signature, uploads, forms = await release_form(request)
    try:
        info = await services(request).firmware.add(
            manifest_bytes, signature, uploads, settings(request).firmware_keys, actor=actor
        )
    finally:
        for form in forms:
            await form.close()
    return JSONResponse(info.as_json(), status_code=201)


async def get_manifest(request: Request) -> Response:
    await _machine(request)
    data, signature = await services(request).firmware.manifest(request.path_params["version"])
    return Response(
        data, media_type="application/json", headers={"X-Firmware-Signature": signature}
    )


async def get_file(request: Request) -> Response:
    await _machine(request)
    version, path = request.path_params["version"], request.path_params["path"]
    if not mf.valid_path(path):
        raise InvalidRequest("bad file path")
    firmware = services(request).firmware
    entry = await firmware.file(version, path)
    size = entry.size
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{entry.sha256}"'}
    wanted = _range(request.headers.get("range"), size)
    if isinstance(wanted, str):  # unsatisfiable
        response = error_response(416, "range_not_satisfiable", f"the file has {size} bytes")
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    status = 200
    start, end = 0, size - 1
    if wanted is not None:
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)

    async def body() -> AsyncIterator[bytes]:
        if size:
            async for chunk in firmware.stream(version, path, start, end):
                yield chunk

    return StreamingResponse(
        body(), status_code=status, media_type="application/octet-stream", headers=headers
    )


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range asked for; None for the whole file (no, several or a bad Range)."""
    if header is None:
        return None
    found = _RANGE.match(header.strip())
    if found is None or (not found.group(1) and not found.group(2)):
        return None
    first, last = found.group(1), found.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    else:
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        start, end = max(size - length, 0), size - 1
    if start >= size:
        return "unsatisfiable"
    return start, end


async def _json(request: Request) -> dict[str, Any]:
    return await b.json_object(request)


async def start_rollout(request: Request) -> Response:
    actor = (await require(request, Right.MACHINES)).username
    body = await _json(request)
    version = b.text(body, "version", max_len=32)
    rollout_id = await services(request).rollouts.start(
        version,
        body.get("target", "all"),
        body.get("waves", [1, 10, 50, 100]),
        _number(body, "max_failure_pct", 10),
        b.integer(body, "deadline_s", low=1, high=30 * 86400, default=86400),
        actor=actor,
    )
    return JSONResponse({"rollout_id": rollout_id}, status_code=201)


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise InvalidRequest(f"{name} must be a number from 0 to 100")
    return float(value)


async def list_rollouts(request: Request) -> Response:
    await require(request, Right.MACHINES)
    return JSONResponse({"rollouts": await services(request).rollouts.list()})


async def get_rollout(request: Request) -> Response:
    await require(request, Right.MACHINES)
    return JSONResponse(await services(request).rollouts.view(request.path_params["rid"]))


async def resume_rollout(request: Request) -> Response:
    await require(request, Right.MACHINES)
    return JSONResponse(await services(request).rollouts.resume(request.path_params["rid"]))


async def abort_rollout(request: Request) -> Response:
    await require(request, Right.MACHINES)
    return JSONResponse(await services(request).rollouts.abort(request.path_params["rid"]))


async def put_tags(request: Request) -> Response:
    await require(request, Right.MACHINES)
    mid = request.path_params["mid"]
    tags = await services(request).rollouts.set_tags(mid, (await _json(request)).get("tags"))
    return JSONResponse({"machine_id": mid, "tags": tags})


OCTETS = "application/octet-stream"
routes = [
    route(
        "GET",
        "/api/firmware",
        list_releases,
        summary="Releases",
        ok=obj({"releases": array(RELEASE)}),
        **FIRMWARE,
    ),
    route(
        "POST",
        "/api/firmware",
        add_release,
        summary="Upload a signed release (up to FIRMWARE_MAX_BYTES); "
        "400 bad_signature when no configured public key verifies it",
        ok=RELEASE,
        raw_body=("multipart/form-data", RELEASE_UPLOAD),
        status=201,
        errors=(409,),
        **FIRMWARE,
    ),
    route(
        "GET",
        "/api/firmware/{version}/manifest",
        get_manifest,
        summary="A release's manifest, its exact signed bytes (machine key)",
        success={"200": {"description": "manifest", "content": {JSON: {"schema": {}}}}},
        params=[VERSION, MACHINE_AUTH],
        errors=(404,),
        **DEVICE,
    ),
    route(
        "GET",
        "/api/firmware/{version}/files/{path:path}",
        get_file,
        summary="A release file (machine key); one byte range answered 206",
        success={
            "200": {"description": "the whole file", "content": {OCTETS: {"schema": STR}}},
            "206": {
                "description": "the range, with Content-Range",
                "content": {OCTETS: {"schema": STR}},
            },
        },
        params=[VERSION, FILE_PATH, MACHINE_AUTH, RANGE],
        errors=(404, 416),
        **DEVICE,
    ),
    route(
        "GET",
        "/api/rollouts",
        list_rollouts,
        summary="Rollouts",
        ok=obj({"rollouts": {"type": "array"}}),
        **FIRMWARE,
    ),
    route(
        "POST",
        "/api/rollouts",
        start_rollout,
        summary="Roll a release out in waves",
        ok=obj({"rollout_id": STR}),
        raw_body=(JSON, NEW_ROLLOUT),
        status=201,
        errors=(404,),
        **FIRMWARE,
    ),
    route(
        "GET",
        "/api/rollouts/{rid}",
        get_rollout,
        summary="A rollout and its machines",
        ok=ROLLOUT,
        params=[ROLLOUT_ID],
        errors=(404,),
        **FIRMWARE,
    ),
    route(
        "POST",
        "/api/rollouts/{rid}/resume",
        resume_rollout,
        summary="Resume a paused rollout (next wave)",
        ok=ROLLOUT,
        params=[ROLLOUT_ID],
        errors=(400, 404),
        **FIRMWARE,
    ),
    route(
        "POST",
        "/api/rollouts/{rid}/abort",
        abort_rollout,
        summary="Abort: cancel what was not sent",
        ok=ROLLOUT,
        params=[ROLLOUT_ID],
        errors=(400, 404),
        **FIRMWARE,
    ),
    route(
        "PUT",
        "/api/machine/{mid}/tags",
        put_tags,
        summary="Set a machine's tags (rollout targets)",
        ok=obj({"machine_id": STR, "tags": {"type": "array"}}),
        params=[MID],
        raw_body=(JSON, TAGS),
        errors=(404,),
        **FIRMWARE,
    ),
]
