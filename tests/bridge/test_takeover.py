"""Two bridges on one client id knock each other off: the log and ``/readyz`` say so."""

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from api.mqtt import bridge as bridge_module
from api.mqtt.bridge import Bridge
from tests.e2e import flow
from tests.support.stack import running_stack


async def test_a_shared_client_id_is_detected_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_module, "SHORT_LIVED_S", 3.0)
    async with running_stack(tmp_path, mqtt=True) as stack:
        await flow.bridge_up(stack)
        ours: Bridge = stack.runtime.mqtt.bridge
        assert ours.takeover_suspected is None
        # another worker logging in with the same account (the broker forces
        # client id = username, as the machines' listener does)
        intruder = Bridge.from_settings(stack.services, stack.settings)
        running = asyncio.create_task(intruder.run())
        try:
            with caplog.at_level(logging.ERROR, logger="api.mqtt.bridge"):
                await flow.until(
                    lambda: ours.takeover_suspected or intruder.takeover_suspected,
                    "a take-over detected",
                    within=60,
                )
            hint = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert any("same client id" in m and "--server-port" in m for m in hint), hint
            if ours.takeover_suspected is not None:
                async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
                    ready = await http.get("/readyz")
                assert ready.status_code == 503  # (schema made without migrations, too)
                assert "server listener" in ready.json()["problems"]["mqtt_client_id"]
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        # alone again: a connection that lasts clears the suspicion, and /readyz with it
        await flow.until(
            lambda: ours.connected.is_set() and ours.takeover_suspected is None,
            "the connection stable again",
            within=60,
        )
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            problems = (await http.get("/readyz")).json()["problems"]
        assert "mqtt_client_id" not in problems and "broker" not in problems
