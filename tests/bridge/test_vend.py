"""A whole vend over MQTT: device, bridge, services and an integrator, on both brokers."""

import aiomqtt
import pytest

from api.clock import FakeClock
from api.mqtt.accounts import create_integrator, revoke_integrator
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.machines import NewMachine
from broker.embedded import EmbeddedBroker
from schema import messages, topics
from tests.bridge.helpers import (
    Inbox,
    decoded,
    device,
    eventually,
    generated_mosquitto,
    go_online,
    is_kind,
    machine_row,
    mqtt,
    order_status,
    pay,
    payload,
    report,
    running_bridge,
)

MID = "vm-1"


async def register(services: Services, mid: str = MID, stock: int = 5) -> str:
    _, key = await services.machines.register(
        NewMachine(machine_id=mid, name="Lobby", price_amount=2500, capacity=10, stock=stock)
    )
    return key


async def vend_over_mqtt(
    host: str,
    port: int,
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    key: str,
    reader: tuple[str, str],
    server_password: str,
) -> None:
    async with (
        running_bridge(services, host, port, server_password) as bridge,
        mqtt(host, port, *reader) as integrator,
        Inbox(integrator) as seen,
        device(host, port, MID, key, boot=1) as machine,
        Inbox(machine) as got,
    ):
        await integrator.subscribe(
            [(topics.state(MID), 1), (topics.sales(MID), 1), (topics.SERVER_STATUS, 1)]
        )
        await machine.subscribe([(topics.desired(MID), 1), (topics.machine_filter("cmd", MID), 1)])
        await go_online(machine, MID, 1, clock.now())

        async def online() -> bool:
            return (await machine_row(services, MID)).online

        await eventually(online, "the machine to be online")
        await seen.wait_for(
            lambda m: m.topic.value == topics.state(MID) and decoded("state", m)["online"]
        )
        server = await seen.wait_for(lambda m: m.topic.value == topics.SERVER_STATUS)
        assert decoded("server_status", server)["state"] == "online"

        first = decoded("desired", await got.wait_for(is_kind("desired", MID)))
        assert first["display"] is not None and first["lock"] is None
        code = first["display"]["code"]

        order_id = await pay(services, gateway, code, quantity=2)
        bridge.kick()  # what the app does after a service commits
        cmd_msg = await got.wait_for(
            lambda m: (
                m.topic.value.startswith(topics.machine_topic(MID, "cmd", "x")[:-1])
                and bool(payload(m))
            )
        )
        cmd = decoded("cmd", cmd_msg)
        assert cmd["order"] == order_id and cmd["quantity"] == 2
        assert cmd_msg.topic.value == topics.cmd(MID, cmd["cmd_id"])
        locked = await got.wait_for(
            lambda m: is_kind("desired", MID)(m) and decoded("desired", m)["lock"] is not None
        )
        assert decoded("desired", locked)["display"] is None

        await report(machine, MID, cmd["cmd_id"], "accepted", 0, clock.now())
        await report(machine, MID, cmd["cmd_id"], "succeeded", 2, clock.now())

        async def dispensed() -> bool:
            return await order_status(services, order_id) == "dispensed"

        await eventually(dispensed, "the order to be dispensed")
        cleared = await got.wait_for(
            lambda m: m.topic.value == cmd_msg.topic.value and payload(m) == messages.CLEAR
        )
        assert cleared.qos == 1
        sale = decoded("sales", await seen.wait_for(is_kind("sales", MID)))
        assert sale == {
            "order": order_id,
            "quantity": 2,
            "amount": 5000,
            "currency": "INR",
            "ts": clock.now(),
        }
        fresh = await got.wait_for(
            lambda m: (
                is_kind("desired", MID)(m)
                and decoded("desired", m)["display"] is not None
                and decoded("desired", m)["display"]["code"] != code
            )
        )
        again = decoded("desired", fresh)
        assert again["version"] > first["version"] and again["stock"] == 3
        row = await machine_row(services, MID)
        assert row.stock == 3 and row.display_code == again["display"]["code"]
        # Integrators never see a display code, a command or a result.
        assert all(
            topics.parse(m.topic.value)[0] in ("state", "sales", "server_status")
            for m in seen.messages
        )


async def test_vend_on_embedded_broker(
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    embedded: EmbeddedBroker,
    server_password: str,
) -> None:
    key = await register(services)
    _, password = await create_integrator(services.ctx.db, clock, "reports", "sales reports")
    await vend_over_mqtt(
        embedded.host,
        embedded.port,
        services,
        gateway,
        clock,
        key,
        ("reports", password),
        server_password,
    )


@pytest.mark.mosquitto
async def test_vend_on_mosquitto_with_generated_config(
    services: Services, gateway: TestGateway, clock: FakeClock, server_password: str
) -> None:
    key = await register(services)
    _, password = await create_integrator(services.ctx.db, clock, "reports")
    await register(services, "vm-revoked")
    await services.machines.revoke_key("vm-revoked")
    _, gone = await create_integrator(services.ctx.db, clock, "former")
    await revoke_integrator(services.ctx.db, "former")
    async with generated_mosquitto(services, server_password) as (host, port, paths):
        passwd = paths[0].read_text()
        assert "vm-revoked:" not in passwd and "former:" not in passwd
        with pytest.raises(aiomqtt.MqttError):
            async with mqtt(host, port, "former", gone):
                pass
        await vend_over_mqtt(
            host, port, services, gateway, clock, key, ("reports", password), server_password
        )


async def test_refused_credentials(
    services: Services, clock: FakeClock, embedded: EmbeddedBroker, server_password: str
) -> None:
    key = await register(services)
    other = await register(services, "vm-2")
    host, port = embedded.host, embedded.port
    _, password = await create_integrator(services.ctx.db, clock, "reports")

    async def accepted(username: str, secret: str, identifier: str | None = None) -> bool:
        try:
            async with mqtt(host, port, username, secret, identifier=identifier or username):
                return True
        except aiomqtt.MqttError:
            return False

    assert await accepted(MID, key)
    assert await accepted("reports", password)
    assert await accepted("smartvend-server", server_password)
    assert not await accepted(MID, key + "x")
    assert not await accepted(MID, other)  # another machine's key
    assert not await accepted(MID, key, identifier="someone-else")
    assert not await accepted("smartvend-server", key)
    assert not await accepted("nobody", key)
    await services.machines.revoke_key(MID)
    assert not await accepted(MID, key)
    await revoke_integrator(services.ctx.db, "reports")
    assert not await accepted("reports", password)
    new_key = await services.machines.rotate_key(MID)
    assert await accepted(MID, new_key)
