"""Broker and server restarts: retained state comes back from the database.

The embedded broker keeps retained messages in memory only, so after it
restarts the bridge republishes every machine's ``desired`` and ``state`` and
every unfinished command; a command issued while the machine was away reaches
it when it returns, and a finished command never comes back.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from api.clock import FakeClock
from api.mqtt.accounts import DatabaseAuthenticator
from api.mqtt.bridge import Bridge
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from broker.embedded import EmbeddedBroker
from schema import topics
from tests.bridge.helpers import (
    Inbox,
    decoded,
    device,
    eventually,
    go_online,
    is_kind,
    machine_row,
    order_status,
    pay,
    report,
    running_bridge,
    wait_disconnected,
)
from tests.bridge.test_vend import MID, register
from tests.support.ports import free_port


@contextlib.asynccontextmanager
async def broker_on(port: int, auth: DatabaseAuthenticator) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker("127.0.0.1", port, auth)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def device_view(
    port: int, key: str, boot: int, clock: FakeClock
) -> tuple[dict[str, object], list[aiomqtt.Message]]:
    """A machine (re)connects: its retained ``desired`` and the retained commands before it."""
    async with device("127.0.0.1", port, MID, key, boot) as machine, Inbox(machine) as got:
        # Commands first: their retained messages arrive before desired's.
        await machine.subscribe(topics.machine_filter("cmd", MID), qos=1)
        await machine.subscribe(topics.desired(MID), qos=1)
        await go_online(machine, MID, boot, clock.now())
        desired = decoded("desired", await got.wait_for(is_kind("desired", MID)))
        return desired, [m for m in got.messages if topics.parse(m.topic.value)[0] == "cmd"]


@pytest.mark.parametrize("restart", ["broker", "server"])
async def test_restart_republishes_and_delivers_the_pending_command(
    restart: str,
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    authenticator: DatabaseAuthenticator,
    server_password: str,
) -> None:
    """``broker``: the broker restarts under a running bridge. ``server``: the whole
    server process restarts (embedded broker and a new Bridge)."""
    key = await register(services)
    port = free_port()
    stack = contextlib.AsyncExitStack()
    async with stack:
        broker = await stack.enter_async_context(broker_on(port, authenticator))
        bridge_cm: contextlib.AbstractAsyncContextManager[Bridge] | None
        bridge_cm = running_bridge(services, "127.0.0.1", port, server_password)
        bridge = await bridge_cm.__aenter__()

        async def restart_server() -> Bridge:
            nonlocal bridge_cm
            assert bridge_cm is not None
            cm, bridge_cm = bridge_cm, None
            await cm.__aexit__(None, None, None)
            await broker.stop()
            await broker.start()
            bridge_cm = running_bridge(services, "127.0.0.1", port, server_password)
            return await bridge_cm.__aenter__()

        try:
            before, cmds = await device_view(port, key, 1, clock)  # leaves cleanly: no will
            assert cmds == []

            async def online() -> bool:
                return (await machine_row(services, MID)).online

            await eventually(online, "the machine to be online")
            assert isinstance(before["display"], dict)
            order_id = await pay(services, gateway, str(before["display"]["code"]), 1)
            await bridge.wait_drained()  # the command is retained on the first broker

            if restart == "broker":
                await broker.stop()
                await wait_disconnected(bridge)
                await broker.start()
                async with asyncio.timeout(10):
                    await bridge.connected.wait()
                assert bridge.connections == 2
            else:
                bridge = await restart_server()

            # The machine returns: same desired version (no bump), the command waits.
            row = await machine_row(services, MID)
            desired, cmds = await device_view(port, key, 2, clock)
            assert desired["version"] == row.desired_version
            assert desired["lock"] is not None and desired["display"] is None
            assert len(cmds) == 1 and cmds[0].retain
            cmd = decoded("cmd", cmds[0])
            assert cmd["order"] == order_id

            async with device("127.0.0.1", port, MID, key, 3) as machine, Inbox(machine):
                await go_online(machine, MID, 3, clock.now())
                await report(machine, MID, cmd["cmd_id"], "accepted", 0, clock.now())
                await report(machine, MID, cmd["cmd_id"], "succeeded", 1, clock.now())

                async def dispensed() -> bool:
                    return await order_status(services, order_id) == "dispensed"

                await eventually(dispensed, "the order to be dispensed")
            await bridge.wait_drained()

            # Restart once more: the finished command is never delivered again.
            if restart == "broker":
                await broker.stop()
                await wait_disconnected(bridge)
                await broker.start()
                async with asyncio.timeout(10):
                    await bridge.connected.wait()
            else:
                bridge = await restart_server()
            after, cmds = await device_view(port, key, 4, clock)
            assert cmds == []
            assert after["lock"] is None and isinstance(after["display"], dict)
            assert after["display"]["code"] != before["display"]["code"]
            assert after["stock"] == 4
        finally:
            if bridge_cm is not None:
                await bridge_cm.__aexit__(None, None, None)
