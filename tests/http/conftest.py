"""The server under uvicorn (no MQTT) with a machine ready to sell."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.services.machines import NewMachine
from schema.models import Machine
from tests.support.stack import Stack, running_stack

CLIENT = "browser-client-1"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, mqtt=False) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        yield client


async def display_code(stack: Stack, mid: str) -> str:
    async with stack.services.ctx.db.begin() as s:
        code = await s.scalar(select(Machine.display_code).where(Machine.id == mid))
    assert code is not None
    return code


@pytest.fixture
async def machine(stack: Stack) -> str:
    await stack.services.machines.register(
        NewMachine(machine_id="lobby-1", name="Lobby", price_amount=2500, capacity=10, stock=5)
    )
    await stack.services.machines.apply_status("lobby-1", {"state": "online", "boot": 1})
    return "lobby-1"
