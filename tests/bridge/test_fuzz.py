"""A hostile machine floods every topic it may publish; the bridge shrugs it off.

Thousands of malformed payloads (random bytes, wrong JSON types, huge numbers,
deep nesting, oversize, mismatched or foreign command ids) must leave no row in
the database and change nothing, and the bridge must still apply the valid
status that follows them.
"""

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from api.clock import FakeClock
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from schema import messages, topics
from schema.errors import SchemaError
from schema.models import Command, DeviceEvent, Machine, Telemetry
from tests.bridge.helpers import device, eventually, go_online, machine_row, pay, running_bridge
from tests.bridge.test_vend import register

VICTIM = "vm-victim"
HOSTILE = "vm-hostile"
COUNT = 2500
SEED = 20261101

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    "",
    "x" * 600,
    -1,
    2**53,
    2**64,
    10**40,
    -(10**40),
    1.5,
    -0.0,
    1e308,
    [],
    {},
    [1, 2],
    {"$": "x"},
    "1",
    "online",
    "vm-victim",
]


def templates(now: int, victim_cmd: str) -> dict[str, dict[str, Any]]:
    return {
        "status": {"state": "online", "boot": 5, "fw": "1.0.0", "ts": now},
        "reported": {"desired_version": 3, "mode": "idle", "stock": 4, "ts": now},
        "telemetry": {"ts": now, "rssi": -60, "temp_c": 31.5},
        "events": {"type": "jam", "code": "motor_stall", "detail": "", "ts": now},
        "results": {"cmd_id": victim_cmd, "status": "succeeded", "dispensed": 1, "ts": now},
    }


def hostile_payload(rng: random.Random, template: dict[str, Any]) -> bytes:
    pick = rng.randrange(10)
    if pick == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if pick == 1:
        return b"\xff\xfe" + json.dumps(template).encode()
    if pick == 2:
        return rng.choice([b"[]", b'"x"', b"1", b"null", b"true", b"{", b"{}", b'{"a":}'])
    if pick == 3:
        text = json.dumps(template)
        key = rng.choice(list(template))
        literal = rng.choice(["1e999", "-1e999", "NaN", "Infinity", "1" * 5000, "1" * 60])
        return text.replace(f'"{key}": ', f'"{key}": {literal}, "_": ', 1).encode()
    if pick == 4:
        depth = rng.randrange(1100, 2000)
        return b"[" * depth + b"]" * depth
    if pick == 5:
        return json.dumps({**template, "pad": "x" * 5000}).encode()
    obj = dict(template)
    key = rng.choice(list(obj))
    if pick == 6:
        del obj[key]
    elif pick == 7 and "ts" in obj:  # telemetry-style junk keys
        obj.update({f"k{i}": rng.choice(HOSTILE_VALUES) for i in range(rng.randrange(1, 40))})
    else:
        obj[key] = rng.choice(HOSTILE_VALUES)
    return json.dumps(obj).encode()


def is_valid(kind: str, topic: str, payload: bytes) -> bool:
    try:
        _, _, cmd_id = topics.parse(topic)
        msg = messages.decode(kind, payload)
    except SchemaError:
        return False
    return kind != "results" or msg["cmd_id"] == cmd_id


async def count(services: Services, model: Any) -> int:
    async with services.ctx.db() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_hostile_machine_changes_nothing(
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    embedded: EmbeddedBroker,
    server_password: str,
) -> None:
    await register(services, VICTIM)
    await services.machines.apply_status(VICTIM, {"state": "online", "boot": 1})
    victim = await machine_row(services, VICTIM)
    assert victim.display_code is not None
    order_id = await pay(services, gateway, victim.display_code, 1)
    async with services.ctx.db() as s:
        victim_cmd = await s.scalar(select(Command).where(Command.order_id == order_id))
        assert victim_cmd is not None
    key = await register(services, HOSTILE)

    rng = random.Random(SEED)
    shapes = templates(clock.now(), victim_cmd.id)
    result_ids: list[Callable[[], str]] = [
        lambda: victim_cmd.id,  # another machine's command, well formed
        lambda: f"cmd_unknown{rng.randrange(10**6)}",
        lambda: "x" * 65,
        lambda: "bad.id",
        lambda: "ünï",
        lambda: "a b",
    ]
    sent: list[tuple[str, str, bytes, int]] = []
    for _ in range(COUNT):
        kind = rng.choice(topics.DEVICE_KINDS)
        cmd_id = rng.choice(result_ids)() if kind == "results" else None
        topic = (
            f"{topics.machine_filter(kind, HOSTILE)[:-1]}{cmd_id}"
            if cmd_id
            else (topics.machine_topic(HOSTILE, kind))
        )
        template = dict(shapes[kind])
        if kind == "results" and rng.random() < 0.3:  # well formed, but not ours to report
            template["cmd_id"] = cmd_id
            template["dispensed"] = rng.choice([0, 1, 2**53 - 1])
            payload = json.dumps(template).encode()
        else:
            payload = hostile_payload(rng, template)
        if is_valid(kind, topic, payload) and kind != "results":
            continue  # a valid message would rightly be applied; not what this test is about
        sent.append((kind, topic, payload, 0 if kind == "telemetry" else 1))

    host, port = embedded.host, embedded.port
    async with (
        running_bridge(services, host, port, server_password) as bridge,
        device(host, port, HOSTILE, key, boot=1) as hostile,
    ):
        for start in range(0, len(sent), 100):
            await asyncio.gather(
                *(
                    hostile.publish(topic, payload, qos=qos, retain=kind == "status")
                    for kind, topic, payload, qos in sent[start : start + 100]
                )
            )
        # Afterwards a valid status (same machine, so handled after all of the above).
        await go_online(hostile, HOSTILE, 7, clock.now())

        async def applied() -> bool:
            row = await machine_row(services, HOSTILE)
            return row.online and row.boot == 7

        await eventually(applied, "the valid status after the flood", within=30)
        await bridge.ingest.join()
        stats = bridge.ingest.stats

    assert len(sent) > 2000
    expected_rejected = sum(not is_valid(k, t, p) for k, t, p, _ in sent)
    assert stats.failed == 0
    assert stats.rejected == expected_rejected > 1500
    assert stats.received == len(sent) + 1
    assert stats.applied == len(sent) - expected_rejected + 1
    assert await count(services, Telemetry) == 0
    assert await count(services, DeviceEvent) == 0
    assert await count(services, Command) == 1
    async with services.ctx.db() as s:
        command = await s.get(Command, victim_cmd.id)
        assert command is not None and command.status == "pending" and command.dispensed == 0
        hostile_row = await s.get(Machine, HOSTILE)
        assert hostile_row is not None and hostile_row.reported_mode is None
    view = await services.orders.view(order_id)
    assert view["status"] == "paid" and view["dispensed"] == 0
