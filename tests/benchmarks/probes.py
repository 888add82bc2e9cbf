"""In-process MQTT ends of the broker benchmark: the server's probe and a responding machine."""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import aiomqtt

from schema import messages, topics
from tests.benchmarks.worker import NODELAY, machine_client


def server_client(host: str, port: int, username: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        host,
        port,
        identifier=username,
        username=username,
        password=password,
        keepalive=60,
        clean_session=True,
        socket_options=NODELAY,
        timeout=30,
    )


async def _pump(client: aiomqtt.Client, handle: Callable[[aiomqtt.Message], None]) -> None:
    with contextlib.suppress(aiomqtt.MqttError):
        async for message in client.messages:
            handle(message)


@contextlib.asynccontextmanager
async def responder(host: str, port: int, mid: str, key: str) -> AsyncIterator[None]:
    """A machine that answers every command with ``accepted`` at once."""
    async with machine_client(host, port, mid, key) as client:
        await client.subscribe(topics.machine_filter("cmd", mid), qos=1)
        answers: set[asyncio.Task[None]] = set()

        def handle(message: aiomqtt.Message) -> None:
            payload = message.payload
            if not isinstance(payload, bytes) or not payload:
                return
            cmd = messages.decode("cmd", payload)
            result = {
                "cmd_id": cmd["cmd_id"],
                "status": "accepted",
                "dispensed": 0,
                "ts": int(time.time()),
            }
            task = asyncio.create_task(
                client.publish(
                    topics.result(mid, cmd["cmd_id"]), messages.encode("results", result), qos=1
                )
            )
            answers.add(task)
            task.add_done_callback(answers.discard)

        pump = asyncio.create_task(_pump(client, handle))
        try:
            yield
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


class Probe:
    """The server side: sends commands, times the results, counts device messages."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.received = 0
        self.by_kind: Counter[str] = Counter()
        self.last_received = 0.0
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._pump: asyncio.Task[None] | None = None

    def _handle(self, message: aiomqtt.Message) -> None:
        now = time.perf_counter()
        self.received += 1
        self.last_received = now
        kind, _mid, cmd_id = topics.parse(message.topic.value)
        self.by_kind[kind] += 1
        if kind == "results" and cmd_id is not None:
            future = self._waiting.pop(cmd_id, None)
            if future is not None and not future.done():
                future.set_result(now)

    def start(self) -> None:
        self._pump = asyncio.create_task(_pump(self.client, self._handle))

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

    async def round_trip(self, mid: str, cmd_id: str) -> float:
        """Publish one retained QoS1 command; seconds until its result came back."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[cmd_id] = future
        now = int(time.time())
        cmd = {
            "cmd_id": cmd_id,
            "action": "dispense",
            "quantity": 1,
            "order": "ord-bench",
            "issued_at": now,
            "expires_at": now + 60,
        }
        started = time.perf_counter()
        await self.client.publish(
            topics.cmd(mid, cmd_id), messages.encode("cmd", cmd), qos=1, retain=True
        )
        async with asyncio.timeout(10):
            done = await future
        return done - started

    async def round_trips(self, mid: str, count: int, warmup: int, tag: str) -> list[float]:
        for n in range(warmup):
            await self.round_trip(mid, f"{tag}-w{n}")
        return [await self.round_trip(mid, f"{tag}-{n}") for n in range(count)]
