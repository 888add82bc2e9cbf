"""The server's side of the wire, played by a test with aiomqtt."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt

from schema import messages, topics

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

Received = tuple[str, str, str | None, dict[str, Any] | None]  # (kind, mid, cmd_id, payload)


class FakeServer:
    """Publishes desired/cmd, and records every machine message it sees."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.received: list[Received] = []
        self._changed = asyncio.Condition()

    async def _pump(self) -> None:
        async for message in self.client.messages:
            kind, mid, cmd_id = topics.parse(message.topic.value)
            payload = message.payload
            assert isinstance(payload, bytes)
            obj = messages.decode(kind, payload) if payload else None
            async with self._changed:
                self.received.append((kind, mid or "", cmd_id, obj))
                self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Received], bool], count: int = 1, within: float = 15
    ) -> list[Received]:
        """Wait until ``count`` received messages match ``predicate``."""

        def matches() -> list[Received]:
            return [r for r in self.received if predicate(r)]

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(matches()) >= count)
        return matches()

    def results(self, mid: str, cmd_id: str) -> list[dict[str, Any]]:
        return [
            obj
            for kind, m, c, obj in self.received
            if kind == "results" and m == mid and c == cmd_id and obj is not None
        ]

    async def desired(self, mid: str, obj: dict[str, Any]) -> None:
        payload = messages.encode("desired", obj)
        await self.client.publish(topics.desired(mid), payload, qos=1, retain=True)

    async def command(self, mid: str, obj: dict[str, Any], *, retain: bool = True) -> None:
        payload = messages.encode("cmd", obj)
        await self.client.publish(topics.cmd(mid, obj["cmd_id"]), payload, qos=1, retain=retain)

    async def clear_command(self, mid: str, cmd_id: str) -> None:
        await self.client.publish(topics.cmd(mid, cmd_id), b"", qos=1, retain=True)


@contextlib.asynccontextmanager
async def fake_server(port: int) -> AsyncIterator[FakeServer]:
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier="test-server", socket_options=NODELAY
    ) as client:
        server = FakeServer(client)
        for kind in ("status", "reported", "events", "results"):
            await client.subscribe(topics.machine_filter(kind), qos=1)
        pump = asyncio.create_task(server._pump())
        try:
            yield server
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


def desired_obj(
    version: int, *, code: str | None = None, lock: bool = False, stock: int = 10, now: int
) -> dict[str, Any]:
    return {
        "version": version,
        "mode": "in_service",
        "display": {"code": code, "expires_at": now + 600} if code else None,
        "lock": {"session": "sess-1", "expires_at": now + 300} if lock else None,
        "price": {"amount": 2500, "currency": "INR"},
        "stock": stock,
    }


def cmd_obj(cmd_id: str, quantity: int, *, now: int, ttl: int = 60) -> dict[str, Any]:
    return {
        "cmd_id": cmd_id,
        "action": "dispense",
        "quantity": quantity,
        "order": "order-" + cmd_id,
        "issued_at": now,
        "expires_at": now + ttl,
    }
