"""Devices, integrators, a running bridge and a generated Mosquitto, for the bridge tests."""

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from api.mqtt.accounts import SERVER_USERNAME
from api.mqtt.bridge import Bridge
from api.mqtt.mosquitto import write_mosquitto_config
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from schema import messages, topics
from schema.models import Machine
from tests.support.brokers import mosquitto_binary
from tests.support.ports import free_port

WAIT = 10.0
CLIENT = "shopper-0001"
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def mqtt(host: str, port: int, username: str, password: str, **kwargs: Any) -> aiomqtt.Client:
    kwargs.setdefault("identifier", username)
    return aiomqtt.Client(
        host,
        port,
        username=username,
        password=password,
        socket_options=NODELAY,
        timeout=WAIT,
        **kwargs,
    )


def device(
    host: str, port: int, mid: str, key: str, boot: int, keepalive: int = 30
) -> aiomqtt.Client:
    """A machine's connection, with its ``lost`` will for this ``boot``."""
    will = aiomqtt.Will(topics.status(mid), messages.status_lost(boot), qos=1, retain=True)
    return mqtt(host, port, mid, key, will=will, keepalive=keepalive)


async def go_online(client: aiomqtt.Client, mid: str, boot: int, now: int) -> None:
    await client.publish(
        topics.status(mid), messages.status_online(boot, "1.0.0", now), qos=1, retain=True
    )


async def report(
    client: aiomqtt.Client, mid: str, cmd_id: str, status: str, n: int, now: int
) -> None:
    payload = messages.encode(
        "results", {"cmd_id": cmd_id, "status": status, "dispensed": n, "ts": now}
    )
    await client.publish(topics.result(mid, cmd_id), payload, qos=1)


class Inbox:
    """Collects what one client receives; ``wait_for`` a message matching a test."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Inbox":
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _collect(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self.client.messages:
                self.messages.append(message)
                self._changed.set()

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == topic]

    async def wait_for(
        self, match: Callable[[aiomqtt.Message], bool], within: float = WAIT
    ) -> aiomqtt.Message:
        async with asyncio.timeout(within):
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                self._changed.clear()
                await self._changed.wait()


def payload(message: aiomqtt.Message) -> bytes:
    assert isinstance(message.payload, bytes)
    return message.payload


def decoded(kind: str, message: aiomqtt.Message) -> dict[str, Any]:
    return messages.decode(kind, payload(message))


def is_kind(kind: str, mid: str) -> Callable[[aiomqtt.Message], bool]:
    return lambda m: m.topic.value == topics.machine_topic(mid, kind) and bool(payload(m))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    """Poll ``check`` (a database read, where no event tells us) until true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def machine_row(services: Services, mid: str) -> Machine:
    async with services.ctx.db() as s:
        machine = await s.get(Machine, mid)
        assert machine is not None
        return machine


async def pay(services: Services, gateway: TestGateway, code: str, quantity: int = 1) -> str:
    """A shopper locks with ``code``, orders and pays; returns the order id."""
    lock = await services.locks.lock_by_code(code, CLIENT)
    created = await services.orders.create(lock.session_id, CLIENT, quantity)
    proof = gateway.complete_payment(created.gateway_order_id)
    order = await services.orders.verify(
        proof["razorpay_order_id"], proof["razorpay_payment_id"], proof["razorpay_signature"]
    )
    assert order.status == "paid"
    return order.id


async def order_status(services: Services, order_id: str) -> str:
    view = await services.orders.view(order_id)
    return str(view["status"])


@contextlib.asynccontextmanager
async def running_bridge(
    services: Services, host: str, port: int, password: str, **options: Any
) -> AsyncIterator[Bridge]:
    """A bridge logged in as the server, connected and republished; stopped on exit.

    ``options`` go to :class:`Bridge` (a Home Assistant feed, say)."""
    bridge = Bridge(
        services,
        host=host,
        port=port,
        password=password,
        **{
            "username": SERVER_USERNAME,
            "poll_s": 0.2,
            "min_backoff": 0.05,
            "max_backoff": 0.5,
            **options,
        },
    )
    task = asyncio.create_task(bridge.run())
    try:
        await wait_connected(bridge, task)
        yield bridge
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert bridge.ingest.stats.failed == 0, "a service raised while handling a message"


async def wait_connected(bridge: Bridge, task: "asyncio.Task[None]") -> None:
    waiter = asyncio.create_task(bridge.connected.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=WAIT, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task in done:
        task.result()
    assert waiter in done, "the bridge did not connect"


async def wait_disconnected(bridge: Bridge) -> None:
    async def down() -> bool:
        return not bridge.connected.is_set()

    await eventually(down, "the bridge to notice the broker went away")


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def _config_dir() -> Path:
    # mosquitto started as root reads its files as its own user: a world-readable dir.
    out_dir = Path(tempfile.mkdtemp(prefix="smartvend-bridge-mosquitto-"))
    out_dir.chmod(0o755)
    return out_dir


async def _started(proc: asyncio.subprocess.Process, port: int) -> None:
    """Until mosquitto listens on ``port`` or exits (a port taken meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        if proc.returncode is not None or await _port_open("127.0.0.1", port):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"mosquitto did not listen on {port}")


@contextlib.asynccontextmanager
async def generated_mosquitto(
    services: Services, server_password: str, discovery_prefix: str | None = None
) -> AsyncIterator[tuple[str, int, list[Path]]]:
    """Mosquitto run from the files ``write_mosquitto_config`` wrote from the database."""
    binary = mosquitto_binary()
    out_dir = _config_dir()
    proc: asyncio.subprocess.Process | None = None
    try:
        for _attempt in range(3):
            port = free_port()
            paths = await write_mosquitto_config(
                services.ctx.db,
                out_dir,
                port=port,
                host="127.0.0.1",
                server_username=SERVER_USERNAME,
                server_password=server_password,
                discovery_prefix=discovery_prefix,
            )
            log = (out_dir / "stderr.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(paths[2]),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            log.close()
            await _started(proc, port)
            if proc.returncode is None:
                yield "127.0.0.1", port, paths
                return
        raise RuntimeError((out_dir / "stderr.log").read_text())
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        shutil.rmtree(out_dir, ignore_errors=True)
