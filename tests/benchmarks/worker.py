"""Benchmark load that runs in its own process: ``python -m tests.benchmarks.worker ROLE CONFIG``.

``CONFIG`` is a JSON file. The worker reports on stdout, one JSON object a line
(``{"event": "ready", ...}``), logs progress on stderr, reads commands from stdin
(``go``) and stops when stdin closes. Roles:

* ``broker``: the embedded broker with in-memory accounts (so its RSS is its own)
* ``idle``: machines that connect and subscribe like real ones, then stay quiet
* ``publish``: machines that publish telemetry and events as fast as they can on ``go``
* ``fleet``: :class:`device.simulator.Fleet` (complete simulated machines)
* ``shoppers``: concurrent shoppers sending ``POST /api/lock-by-code`` with httpx
* ``pages``: open order pages, each following its order's live stream (SSE)
* ``scale``: many machines for the scale-out bench (``tests.benchmarks.scale_fleet``)
* ``light``: tens of thousands of machines on raw MQTT (``tests.benchmarks.light_fleet``)
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from schema import messages, topics
from tests.benchmarks.light_fleet import run_light
from tests.benchmarks.measure import raise_open_files_limit
from tests.benchmarks.scale_fleet import run_scale

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
CONNECT_CONCURRENCY = 50
Config = dict[str, Any]


def _read_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def log(message: str) -> None:
    print(f"    [{os.getpid()}] {message}", file=sys.stderr, flush=True)


class Commands:
    """Lines from stdin; ``None`` once it is closed (the signal to stop)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    @classmethod
    async def open(cls) -> "Commands":
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, sys.stdin)
        return cls(reader)

    async def next(self) -> str | None:
        line = await self._reader.readline()
        return line.decode().strip() if line else None

    async def until_closed(self) -> None:
        while await self.next() is not None:
            pass


def machine_client(host: str, port: int, mid: str, key: str) -> aiomqtt.Client:
    """A machine's connection as the firmware makes it: id = username, a ``lost`` will."""
    return aiomqtt.Client(
        host,
        port,
        identifier=mid,
        username=mid,
        password=key,
        will=aiomqtt.Will(topics.status(mid), messages.status_lost(1), qos=1, retain=True),
        keepalive=60,
        clean_session=True,
        socket_options=NODELAY,
        timeout=30,
    )


async def _hold(
    cfg: Config,
    body: Callable[[str, aiomqtt.Client], Awaitable[None]],
    ready: Callable[[], None],
) -> None:
    """Connect every machine in ``cfg``, run ``body`` on each, and keep them connected."""
    host, port = cfg["host"], cfg["port"]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connected = 0
    total = len(cfg["machines"])
    all_in = asyncio.Event()

    async def one(mid: str, key: str) -> None:
        nonlocal connected
        async with gate:
            client = machine_client(host, port, mid, key)
            await client.__aenter__()
        try:
            await body(mid, client)
            connected += 1
            if connected % 250 == 0 or connected == total:
                log(f"{connected}/{total} machines connected")
            if connected == total:
                all_in.set()
            await asyncio.Event().wait()  # until the process exits
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    tasks = [asyncio.create_task(one(mid, key)) for mid, key in cfg["machines"]]
    waiter = asyncio.create_task(all_in.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter:
            task.result()  # a machine could not connect: fail loudly
    ready()
    await asyncio.gather(*tasks)


async def _online(mid: str, client: aiomqtt.Client) -> None:
    await client.subscribe(
        [
            (topics.desired(mid), 1),
            (topics.machine_filter("cmd", mid), 1),
            (topics.SERVER_STATUS, 1),
        ]
    )
    now = int(time.time())
    await client.publish(
        topics.status(mid), messages.status_online(1, "1.0.0", now), qos=1, retain=True
    )


async def run_idle(cfg: Config, commands: Commands) -> None:
    hold = asyncio.create_task(
        _hold(cfg, _online, lambda: emit("ready", machines=len(cfg["machines"])))
    )
    closed = asyncio.create_task(commands.until_closed())
    await asyncio.wait([hold, closed], return_when=asyncio.FIRST_COMPLETED)
    if hold.done():
        hold.result()
    os._exit(0)  # dropping 1,000 links at once; the broker's cleanup is not measured


async def run_publish(cfg: Config, commands: Commands) -> None:
    """On each ``go N`` every machine publishes N messages, awaiting each; then ``done``."""
    kinds = cfg["kinds"]
    clients: dict[str, aiomqtt.Client] = {}
    ready = asyncio.Event()

    async def keep(mid: str, client: aiomqtt.Client) -> None:
        clients[mid] = client

    hold = asyncio.create_task(_hold(cfg, keep, ready.set))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([hold, waiter], return_when=asyncio.FIRST_COMPLETED)
    if hold.done():
        hold.result()
    emit("ready", machines=len(clients))

    async def publish(mid: str, client: aiomqtt.Client, count: int) -> None:
        for n in range(count):
            kind = kinds[n % len(kinds)]
            now = int(time.time())
            body: dict[str, object]
            if kind == "telemetry":
                body = {"ts": now, "rssi": -50 - n % 20, "uptime_s": n, "free_mem": 110_000}
                await client.publish(topics.telemetry(mid), messages.encode(kind, body), qos=0)
            else:
                body = {"type": "door_open", "code": "D1", "detail": f"bench {n}", "ts": now}
                await client.publish(topics.events(mid), messages.encode(kind, body), qos=1)

    while (line := await commands.next()) is not None:
        command, _, count = line.partition(" ")
        if command != "go":
            continue
        started = time.monotonic()
        await asyncio.gather(*(publish(mid, c, int(count)) for mid, c in clients.items()))
        emit("done", sent=int(count) * len(clients), seconds=time.monotonic() - started)
    os._exit(0)


async def run_broker(cfg: Config, commands: Commands) -> None:
    from broker.embedded import EmbeddedBroker
    from broker.principals import StaticAuthenticator

    accounts = _read_json(cfg["accounts"])
    auth = StaticAuthenticator({u: (role, stored) for u, role, stored in accounts})
    broker = EmbeddedBroker("127.0.0.1", int(cfg["port"]), auth)
    await broker.start()
    emit("ready", pid=os.getpid(), port=broker.port)
    await commands.until_closed()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await broker.stop()
    os._exit(0)


async def run_fleet(cfg: Config, commands: Commands) -> None:
    """A :class:`Fleet`; on EOF the process exits at once, as a fleet-wide power cut."""
    from device.simulate import load_credentials
    from device.simulator import Fleet

    machines = load_credentials(cfg["credentials"])[: cfg.get("machines")]
    fleet = Fleet(
        machines,
        cfg["host"],
        cfg["port"],
        connect_spread_s=float(cfg["spread_s"]),
        seed=1,
        flash_dir=cfg.get("flash_dir"),
        slot_counts=cfg.get("slot_counts"),
    )
    await fleet.__aenter__()  # never left: os._exit below
    emit("started", machines=len(machines))

    async def report() -> None:
        while True:
            await asyncio.sleep(10)
            log("fleet: " + fleet.summary_line())

    reporter = asyncio.create_task(report())
    waiting = asyncio.create_task(fleet.wait_online(within=600))
    closed = asyncio.create_task(commands.until_closed())
    await asyncio.wait([waiting, closed], return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        waiting.result()
        emit("online", seconds=time.monotonic() - fleet.started)
        await closed
    reporter.cancel()
    os._exit(0)


async def run_shoppers(cfg: Config, commands: Commands) -> None:
    import httpx

    pairs: list[list[str]] = cfg["pairs"]
    concurrency = int(cfg["concurrency"])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=cfg["url"], limits=limits, timeout=60) as http:
        emit("ready")
        if await commands.next() != "go":
            os._exit(0)
        queue = list(enumerate(pairs))

        async def shopper() -> None:
            while queue:
                n, (_mid, code) = queue.pop()
                body = {"code": code, "client_id": f"bench-lock-{n:06d}"}
                t0 = time.perf_counter()
                try:
                    reply = await http.post("/api/lock-by-code", json=body)
                    key = str(reply.status_code)
                except httpx.HTTPError as exc:  # counted, not fatal: the server is the subject
                    key = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(shopper() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    emit("done", seconds=elapsed, latencies=latencies, statuses=statuses)
    await commands.until_closed()
    os._exit(0)


async def run_pages(cfg: Config, commands: Commands) -> None:
    """Open one order page's stream per order id and keep them open until EOF."""
    import httpx

    orders: list[str] = cfg["orders"]
    limits = httpx.Limits(max_connections=len(orders) + 10, max_keepalive_connections=0)
    opened = 0
    all_open = asyncio.Event()
    failures: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=cfg["url"], limits=limits, timeout=None) as http:

        async def page(order_id: str) -> None:
            nonlocal opened
            settled = False

            def settle(failure: str | None = None) -> None:
                nonlocal opened, settled
                if failure is not None:
                    failures[failure] = failures.get(failure, 0) + 1
                if not settled:
                    settled = True
                    opened += 1
                    if opened == len(orders):
                        all_open.set()

            try:
                async with http.stream("GET", f"/api/orders/{order_id}/events") as stream:
                    if stream.status_code != 200:
                        settle(str(stream.status_code))
                        return
                    lines = stream.aiter_lines()
                    async for line in lines:
                        if line.startswith("data:"):
                            break
                    settle()
                    async for _line in lines:
                        pass  # heartbeats and changes, until the stream ends
            except httpx.HTTPError as exc:
                settle(None if settled else type(exc).__name__)

        tasks = [asyncio.create_task(page(o)) for o in orders]
        await all_open.wait()
        emit("ready", pages=len(orders), failures=failures)
        await commands.until_closed()
        for task in tasks:
            task.cancel()
    os._exit(0)


ROLES = {
    "broker": run_broker,
    "idle": run_idle,
    "publish": run_publish,
    "fleet": run_fleet,
    "shoppers": run_shoppers,
    "pages": run_pages,
    "scale": run_scale,
    "light": run_light,
}


async def main(role: str, cfg: Config) -> None:
    raise_open_files_limit()
    await ROLES[role](cfg, await Commands.open())


if __name__ == "__main__":
    # aiomqtt warns about every publish beyond ten in flight: that is the load we want.
    logging.basicConfig(level=logging.ERROR, format="    %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], _read_json(sys.argv[2])))
