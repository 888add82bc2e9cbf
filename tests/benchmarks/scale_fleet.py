"""The ``scale`` load role: many simulated machines in one process, for the scale-out bench.

Each machine connects as the firmware does (its own aiomqtt connection, id = username,
a ``lost`` will), subscribes to its ``desired``, its ``cmd/+`` and the server's status,
publishes its retained ``online`` status and answers every command with ``accepted``.
Commands on stdin:

* ``steady S``: every machine sends telemetry every S seconds, at a random phase;
* ``quiet``: steady telemetry stops (``quiet`` is answered once it has);
* ``burst RATE SECONDS``: this process publishes RATE telemetry messages a second, spread
  over its machines, for SECONDS (answered ``burst_done`` with what it sent).
"""

import asyncio
import contextlib
import json
import os
import random
import time
from typing import Any

import aiomqtt

from schema import messages, topics

CONNECT_CONCURRENCY = 100
TICK_S = 0.02


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _telemetry(n: int) -> bytes:
    body = {"ts": int(time.time()), "rssi": -50 - n % 20, "uptime_s": n, "free_mem": 110_000}
    return messages.encode("telemetry", body)


async def run_scale(cfg: dict[str, Any], commands: Any) -> None:
    from tests.benchmarks.worker import NODELAY

    host, port = cfg["host"], cfg["port"]
    boot = int(cfg["boot"])  # grows from run to run, as a machine's boot counter does
    machines: list[list[str]] = cfg["machines"]
    clients: dict[str, aiomqtt.Client] = {}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    all_in = asyncio.Event()
    answered = 0

    async def answer(mid: str, client: aiomqtt.Client) -> None:
        nonlocal answered
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes) or not payload:
                    continue
                if topics.parse(message.topic.value)[0] != "cmd":
                    continue
                cmd = messages.decode("cmd", payload)
                result = {
                    "cmd_id": cmd["cmd_id"],
                    "status": "accepted",
                    "dispensed": 0,
                    "ts": int(time.time()),
                }
                await client.publish(
                    topics.result(mid, cmd["cmd_id"]), messages.encode("results", result), qos=1
                )
                answered += 1

    async def one(mid: str, key: str) -> None:
        async with gate:
            client = aiomqtt.Client(
                host,
                port,
                identifier=mid,
                username=mid,
                password=key,
                will=aiomqtt.Will(
                    topics.status(mid), messages.status_lost(boot), qos=1, retain=True
                ),
                keepalive=60,
                clean_session=True,
                socket_options=NODELAY,
                timeout=60,
            )
            await client.__aenter__()
            await client.subscribe(
                [
                    (topics.desired(mid), 1),
                    (topics.machine_filter("cmd", mid), 1),
                    (topics.SERVER_STATUS, 1),
                ]
            )
            online = messages.status_online(boot, "1.0.0", int(time.time()))
            await client.publish(topics.status(mid), online, qos=1, retain=True)
        clients[mid] = client
        if len(clients) == len(machines):
            all_in.set()
        await answer(mid, client)

    holders = [asyncio.create_task(one(mid, key)) for mid, key in machines]
    waiter = asyncio.create_task(all_in.wait())
    done, _ = await asyncio.wait([waiter, *holders], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter:
            task.result()  # a machine could not connect: fail loudly
    _emit("ready", machines=len(clients))

    steady: list[asyncio.Task[None]] = []
    steady_sent = 0

    async def tick(mid: str, client: aiomqtt.Client, period: float) -> None:
        nonlocal steady_sent
        await asyncio.sleep(random.uniform(0, period))
        n = 0
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(topics.telemetry(mid), _telemetry(n), qos=0)
                steady_sent += 1
            n += 1
            await asyncio.sleep(period)

    async def burst(rate: float, seconds: float) -> tuple[int, float]:
        order = list(clients.items())
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while (now := loop.time()) < started + seconds:
            due = int((now - started) * rate) - sent
            for _ in range(max(0, due)):
                mid, client = order[sent % len(order)]
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(topics.telemetry(mid), _telemetry(sent), qos=0)
                sent += 1
            await asyncio.sleep(TICK_S)
        return sent, loop.time() - started

    while (line := await commands.next()) is not None:
        word, *args = line.split()
        if word == "steady":
            period = float(args[0])
            steady = [asyncio.create_task(tick(m, c, period)) for m, c in clients.items()]
            _emit("steady", machines=len(steady))
        elif word == "quiet":
            for task in steady:
                task.cancel()  # not awaited: a publish stuck on a full socket must not stall this
            steady = []
            _emit("quiet", sent=steady_sent, answered=answered)
        elif word == "burst":
            sent, seconds = await burst(float(args[0]), float(args[1]))
            _emit("burst_done", sent=sent, seconds=seconds)
    os._exit(0)  # dropping thousands of links at once; the broker's cleanup is not measured
