"""The HTTP edge: source addresses, body limits, slow and silent clients."""

import asyncio
import logging
from pathlib import Path

import httpx
from sqlalchemy import select

from api.http.slow_clients import AcceptErrorFilter
from api.http.source import parse_trusted, source_of
from schema.models import VendSession
from tests.http.conftest import CLIENT, display_code
from tests.support.stack import Stack, running_stack


def test_forwarded_chain_is_believed_only_from_trusted_proxies() -> None:
    trusted = parse_trusted("10.0.0.0/8, 192.0.2.1")
    spoofed = {"x-forwarded-for": "1.2.3.4, 198.51.100.7, 10.1.1.1"}
    assert source_of("203.0.113.9", spoofed, trusted) == "203.0.113.9"  # not a proxy of ours
    assert source_of("192.0.2.1", spoofed, trusted) == "198.51.100.7"  # past our own hops
    assert source_of("192.0.2.1", {}, trusted) == "192.0.2.1"
    forwarded = {"forwarded": 'for=1.2.3.4, for="[2001:db8::5]:4711";proto=https'}
    assert source_of("10.0.0.2", forwarded, trusted) == "2001:db8::5"
    assert source_of("127.0.0.1", spoofed, parse_trusted("")) == "127.0.0.1"


async def lock_source(stack: Stack, http: httpx.AsyncClient, mid: str, forwarded: str) -> str:
    code = await display_code(stack, mid)
    answer = await http.post(
        "/api/lock-by-code",
        json={"code": code, "client_id": CLIENT, "machine_id": mid},
        headers={"X-Forwarded-For": forwarded},
    )
    assert answer.status_code == 200, answer.text
    async with stack.services.ctx.db.begin() as s:
        source = await s.scalar(
            select(VendSession.source).where(VendSession.id == answer.json()["session_id"])
        )
    assert source is not None
    return source


async def test_loopback_cannot_pick_its_own_address(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    assert await lock_source(stack, http, machine, "198.51.100.23") == "127.0.0.1"


async def test_a_trusted_proxy_passes_the_real_address(tmp_path: Path) -> None:
    async with running_stack(tmp_path, mqtt=False, trusted_proxies="127.0.0.1/32") as stack:
        from api.services.machines import NewMachine

        await stack.services.machines.register(
            NewMachine(machine_id="m1", name="M", price_amount=2500, capacity=5, stock=5)
        )
        await stack.services.machines.apply_status("m1", {"state": "online", "boot": 1})
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            source = await lock_source(stack, http, "m1", "6.6.6.6, 198.51.100.23")
    assert source == "198.51.100.23"


async def test_bodies_over_the_limit_are_refused_before_they_are_read(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    limit = stack.settings.max_body_bytes
    big = b"x" * (limit + 1)
    for path, content_type in (
        ("/api/lock-by-code", "application/json"),
        ("/admin/login", "application/x-www-form-urlencoded"),  # before its CSRF check
        ("/api/webhooks/razorpay", "application/json"),
    ):
        answer = await http.post(path, content=big, headers={"Content-Type": content_type})
        assert answer.status_code == 413, path
        assert answer.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the stream is cut at the limit
        for _ in range(limit // 1024 + 2):
            yield b"a=" + b"b" * 1022

    answer = await http.post(
        "/admin/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


async def test_silent_sockets_do_not_stop_real_requests_and_are_closed(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    host, port = "127.0.0.1", int(stack.url.rsplit(":", 1)[1])
    silent = [await asyncio.open_connection(host, port) for _ in range(300)]
    slow_reader, slow_writer = await asyncio.open_connection(host, port)
    slow_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    await slow_writer.drain()
    try:
        answer = await http.get("/healthz")
        assert answer.status_code == 200
        # All of them are closed by the header timeout (10 s), none is left open.
        closed = await asyncio.wait_for(
            asyncio.gather(*(r.read() for r, _ in [*silent, (slow_reader, slow_writer)])), 15
        )
        assert all(data == b"" for data in closed)
    finally:
        for _, writer in [*silent, (slow_reader, slow_writer)]:
            writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_five_seconds(stack: Stack) -> None:
    host, port = "127.0.0.1", int(stack.url.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(
                v
                for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            )
        )
        await reader.readexactly(length)
        idle_from = loop.time()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        assert 4 <= loop.time() - idle_from <= 7
    finally:
        writer.close()


def test_accept_resource_errors_are_logged_once_per_interval() -> None:
    log = logging.getLogger("test-accept-errors")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    log.addHandler(handler)
    log.propagate = False
    found = AcceptErrorFilter(interval_s=3600)
    log.addFilter(found)
    try:
        for _ in range(500):
            log.error("socket.accept() out of system resource")
        log.error("something else")
    finally:
        log.removeFilter(found)
        log.removeHandler(handler)
    assert [r.getMessage()[:40] for r in records] == [
        "socket.accept() out of system resource (",
        "something else",
    ]
    assert found.suppressed == 499
