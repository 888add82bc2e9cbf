"""An aiosmtpd server on a free loopback port, in the test's own loop."""

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.smtp import SMTP

from tests.support.ports import free_port


@dataclass
class Sink:
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        async with self.arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def body(self, index: int) -> str:
        raw = self.messages[index].get_payload(decode=True)
        assert isinstance(raw, bytes)
        return raw.decode()

    def subjects(self, containing: str = "") -> list[str]:
        return [str(m["Subject"]) for m in self.messages if containing in str(m["Subject"])]


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[Sink]:
    sink = Sink(port=free_port())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", sink.port
    )
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()
