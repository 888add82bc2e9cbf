"""DELETE /api/machine/{mid}: the key stops working on MQTT and HTTP, the retained
topics are cleared, the machine leaves fleet views, its sales stay; 409 during a vend."""

import asyncio
import time
from pathlib import Path

import aiomqtt
import httpx
import pytest

from api.mqtt.accounts import create_integrator
from api.services.audit import AuditFilter
from schema import topics
from schema.models import Machine
from tests.admin.support import admin_stack, vend
from tests.bridge.helpers import Inbox, device, eventually, go_online, machine_row, mqtt
from tests.operators.support import bearer, token_of
from tests.support.stack import ADMIN_PASSWORD

HOST = "127.0.0.1"


async def test_decommission_a_machine(tmp_path: Path) -> None:
    async with (
        admin_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=20) as http,
    ):
        port = stack.settings.mqtt_port
        admin = bearer(await token_of(http, "admin", ADMIN_PASSWORD))
        body = {
            "machine_id": "m-1", "name": "Mall", "location": "Mall",
            "price": {"amount": 2500, "currency": "INR"}, "capacity": 10, "stock": 5,
        }  # fmt: skip
        made = await http.post("/api/machine/register", json=body, headers=admin)
        assert made.status_code == 201
        key = made.json()["api_key"]
        _, watch_password = await create_integrator(
            stack.services.ctx.db, stack.services.ctx.clock, "watcher"
        )
        state_topic = topics.state("m-1")
        async with (
            device(HOST, port, "m-1", key, boot=1) as machine,
            mqtt(HOST, port, "watcher", watch_password) as watcher,
            Inbox(watcher) as seen,
        ):
            await go_online(machine, "m-1", 1, int(time.time()))

            async def online() -> bool:
                return (await machine_row(stack.services, "m-1")).online

            await eventually(online, "m-1 online")
            await watcher.subscribe(state_topic, qos=1)
            await seen.wait_for(lambda m: m.topic.value == state_topic and m.payload != b"")
            order_id = await vend(stack.services, "m-1")  # a sale before it goes

            # A shopper holds the machine: it cannot be removed now.
            async with stack.services.ctx.db() as s:
                row = await s.get(Machine, "m-1")
                assert row is not None and row.display_code is not None
                code = row.display_code
            lock = await http.post(
                "/api/lock-by-code", json={"code": code, "client_id": "client-00002"}
            )
            assert lock.status_code == 200, lock.text
            busy = await http.delete("/api/machine/m-1", headers=admin)
            assert busy.status_code == 409 and busy.json()["error"]["code"] == "machine_busy"
            unlocked = await http.post(
                "/api/machine/m-1/unlock",
                json={"client_id": "client-00002", "session_id": lock.json()["session_id"]},
            )
            assert unlocked.status_code == 200

            viewer = await stack.services.admins.create(
                "vic", "pw-long-enough-1", "operator", ["Lobby"], by="admin"
            )
            assert viewer.role == "operator"
            vic = bearer(await token_of(http, "vic"))
            assert (await http.delete("/api/machine/m-1", headers=vic)).status_code == 403

            removed = await http.delete("/api/machine/m-1", headers=admin)
            assert removed.status_code == 200, removed.text
            assert removed.json()["machine_id"] == "m-1"

            # The retained state is cleared for subscribers already there ...
            await seen.wait_for(lambda m: m.topic.value == state_topic and m.payload == b"")
            # ... and the machine's own connection is closed.
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(20):
                    async for _ in machine.messages:
                        pass

        # The key no longer works, on MQTT ...
        with pytest.raises(aiomqtt.MqttError):
            async with device(HOST, port, "m-1", key, boot=2):
                pass
        # ... or HTTP.
        status = await http.get("/api/machine/m-1/status", headers=bearer(key))
        assert status.status_code == 401

        # A new subscriber finds nothing retained on its topics (server status comes after).
        async with (
            mqtt(HOST, port, "watcher", watch_password, identifier="watcher-2") as late,
            Inbox(late) as later,
        ):
            await late.subscribe(state_topic, qos=1)
            await late.subscribe(topics.SERVER_STATUS, qos=1)
            await later.wait_for(lambda m: m.topic.value == topics.SERVER_STATUS)
            assert [m.payload for m in later.on(state_topic)] == []

        # It left the fleet views; its sale stays.
        shoppers = (await http.get("/api/machines")).json()["machines"]
        assert "m-1" not in [m["machine_id"] for m in shoppers]
        assert [r.machine_id for r in await stack.services.admin_views.fleet()] == []
        detail = await stack.services.order_views.detail(order_id)
        assert detail.order.machine_id == "m-1" and detail.order.status == "dispensed"
        entries = await stack.services.audit.entries(AuditFilter(action="machine_removed"))
        assert [(e.actor, e.target) for e in entries] == [("admin", "machine:m-1")]
