"""Prices typed on the dashboard: read one clear way, big changes confirmed first."""

from pathlib import Path

import httpx

from schema.models import Machine
from tests.admin.support import admin_client, admin_stack, csrf_of, post_form, register


async def _price(stack: object, mid: str) -> int:
    services = stack.services  # type: ignore[attr-defined]
    async with services.ctx.db() as s:
        machine = await s.get(Machine, mid)
        assert machine is not None
        return machine.price_amount


async def _set(admin: httpx.AsyncClient, text: str, **extra: str) -> httpx.Response:
    return await post_form(
        admin, "/admin/machines/m1", "/admin/machines/m1/price", {"price": text, **extra}
    )


async def test_ambiguous_prices_are_refused_beside_the_field(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        await register(stack.services, "m1")  # ₹25.00
        async with admin_client(stack) as admin:
            for text in ("20,50", "1e3", "1_000", "20.505"):
                answer = await _set(admin, text)
                assert answer.status_code == 400, text
                assert 'id="e-price"' in answer.text
                assert f'value="{text}"' in answer.text  # what was typed stays to be fixed
                assert await _price(stack, "m1") == 2500
            for text, paise in (("20", 2000), ("20.5", 2050), ("₹20.50", 2050), ("30", 3000)):
                answer = await _set(admin, text)
                assert answer.status_code == 303, (text, answer.text[:300])
                assert await _price(stack, "m1") == paise


async def test_a_change_of_more_than_half_asks_first(tmp_path: Path) -> None:
    async with admin_stack(tmp_path) as stack:
        await register(stack.services, "m1")  # ₹25.00
        async with admin_client(stack) as admin:
            asked = await _set(admin, "250")
            assert asked.status_code == 409
            assert "from ₹25.00 to <strong>₹250.00</strong>" in asked.text
            assert await _price(stack, "m1") == 2500  # nothing changed yet
            sure = await admin.post(
                "/admin/machines/m1/price",
                data={"price": "250", "confirm": "yes", "csrf": csrf_of(asked.text)},
            )
            assert sure.status_code == 303
            assert await _price(stack, "m1") == 25000
            down = await _set(admin, "100")  # ₹250 -> ₹100 is a cut of 60 %
            assert down.status_code == 409
            assert await _price(stack, "m1") == 25000
