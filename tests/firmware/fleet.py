"""A small fleet of machines that update themselves: MQTT for commands, HTTP for files.

Each machine connects with its own key, says ``online`` with its ``fw``, and
answers an update command the way contract section 6 asks: ``accepted``, then it
downloads the manifest and every file over HTTP (each file in two byte ranges,
as a machine resuming a download does), checks the signature and each sha256,
reports ``running`` progress, "reboots" (disconnects and connects again with a
higher ``boot`` and the new ``fw``) and reports ``succeeded`` from the new
version. A machine told to fail a version reports ``failed`` ``hash_mismatch``
as if a file came down corrupt. A command it already answered gets the stored
answer again (the retained command is seen again after the reboot).
"""

import asyncio
import contextlib
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schema import topics, wire

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass
class Machine:
    mid: str
    key: str
    fw: str = "1.0.0"
    boot: int = 0
    fail_versions: set[str] = field(default_factory=set)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates_seen: list[str] = field(default_factory=list)  # versions of update commands
    pending: dict[str, Any] | None = None  # the result to report after the reboot
    ranges: list[int] = field(default_factory=list)  # HTTP statuses of file downloads


class UpdateFleet:
    def __init__(
        self, machines: list[Machine], mqtt_port: int, http: httpx.AsyncClient, public_key: str
    ) -> None:
        self.machines = {m.mid: m for m in machines}
        self.port = mqtt_port
        self.http = http
        self.public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        self.online: dict[str, asyncio.Event] = {m.mid: asyncio.Event() for m in machines}
        self.errors: list[str] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["UpdateFleet"]:
        tasks = [asyncio.create_task(self._run(m)) for m in self.machines.values()]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_online(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            for event in self.online.values():
                await event.wait()

    async def _run(self, m: Machine) -> None:
        while True:
            try:
                await self._session(m)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)  # the broker is busy with a connect storm: again
            except Exception as exc:
                # a download that broke: noted; after reconnecting, the retained
                # command arrives again and the machine starts over
                self.errors.append(f"{m.mid}: {exc!r}")
                await asyncio.sleep(0.2)

    async def _session(self, m: Machine) -> None:
        m.boot += 1
        will = aiomqtt.Will(topics.status(m.mid), wire.status_lost(m.boot), qos=1, retain=True)
        async with aiomqtt.Client(
            "127.0.0.1",
            self.port,
            identifier=m.mid,
            username=m.mid,
            password=m.key,
            will=will,
            keepalive=30,
            socket_options=NODELAY,
        ) as client:
            now = int(time.time())
            await client.subscribe(topics.machine_filter("cmd", m.mid), qos=1)
            await client.publish(
                topics.status(m.mid), wire.status_online(m.boot, m.fw, now), qos=1, retain=True
            )
            if m.pending is not None:
                await self._answer(client, m, m.pending)
                m.pending = None
            self.online[m.mid].set()
            async for message in client.messages:
                payload = bytes(message.payload) if isinstance(message.payload, bytes) else b""
                if not payload:
                    continue
                cmd = json.loads(payload)
                if cmd.get("action") != "update":
                    continue
                if await self._update(client, m, cmd):
                    return  # reboot into the new version

    async def _answer(self, client: aiomqtt.Client, m: Machine, result: dict[str, Any]) -> None:
        result = {**result, "ts": int(time.time())}
        if result["status"] not in ("accepted", "running"):
            m.answers[result["cmd_id"]] = result
        await client.publish(
            topics.result(m.mid, result["cmd_id"]), json.dumps(result).encode(), qos=1
        )

    async def _update(self, client: aiomqtt.Client, m: Machine, cmd: dict[str, Any]) -> bool:
        cmd_id = cmd["cmd_id"]
        if cmd_id in m.answers:
            await self._answer(client, m, m.answers[cmd_id])
            return False
        firmware = cmd["firmware"]
        version = firmware["version"]
        m.updates_seen.append(version)
        if version == m.fw:
            await self._answer(
                client, m, {"cmd_id": cmd_id, "status": "rejected", "error": "same_version"}
            )
            return False
        await self._answer(client, m, {"cmd_id": cmd_id, "status": "accepted"})
        headers = {"Authorization": f"Bearer {m.key}", "X-Machine-Id": m.mid}
        got = await self.http.get(firmware["manifest_url"], headers=headers)
        if got.status_code != 200:
            self.errors.append(f"{m.mid}: manifest {got.status_code}")
            await self._answer(
                client, m, {"cmd_id": cmd_id, "status": "failed", "error": "download_failed"}
            )
            return False
        manifest_bytes = got.content
        try:
            self.public_key.verify(bytes.fromhex(firmware["signature"]), manifest_bytes)
        except (InvalidSignature, ValueError):
            await self._answer(
                client, m, {"cmd_id": cmd_id, "status": "rejected", "error": "bad_signature"}
            )
            return False
        manifest = json.loads(manifest_bytes)
        total = sum(f["size"] for f in manifest["files"])
        done = 0
        for entry in manifest["files"]:
            data = await self._download(m, version, entry, headers)
            if data is None:
                await self._answer(
                    client, m, {"cmd_id": cmd_id, "status": "failed", "error": "download_failed"}
                )
                return False
            done += len(data)
            ok = hashlib.sha256(data).hexdigest() == entry["sha256"]
            if not ok or version in m.fail_versions:
                await self._answer(
                    client, m, {"cmd_id": cmd_id, "status": "failed", "error": "hash_mismatch"}
                )
                return False
            progress = {"stage": "download", "bytes": done, "total": total, "extra": 1}
            await self._answer(
                client, m, {"cmd_id": cmd_id, "status": "running", "progress": progress}
            )
        progress = {"stage": "install", "bytes": total, "total": total}
        await self._answer(client, m, {"cmd_id": cmd_id, "status": "running", "progress": progress})
        m.fw = version
        m.pending = {"cmd_id": cmd_id, "status": "succeeded"}
        return True

    async def _download(
        self, m: Machine, version: str, entry: dict[str, Any], headers: dict[str, str]
    ) -> bytes | None:
        url = f"/api/firmware/{version}/files/{entry['path']}"
        half = entry["size"] // 2
        parts = []
        for wanted in (f"bytes=0-{half - 1}", f"bytes={half}-") if half else ("bytes=0-",):
            async with self.http.stream("GET", url, headers={**headers, "Range": wanted}) as r:
                m.ranges.append(r.status_code)
                if r.status_code != 206:
                    self.errors.append(f"{m.mid}: {url} {wanted} -> {r.status_code}")
                    return None
                parts.append(b"".join([chunk async for chunk in r.aiter_bytes()]))
        return b"".join(parts)
