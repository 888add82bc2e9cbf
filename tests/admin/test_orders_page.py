"""The orders page and its CSV: found by machine name or id, filters kept when one is wrong,
partial refunds told apart, and local times a spreadsheet reads."""

import csv
import datetime as dt
import io
import re
from pathlib import Path

from api.clock import FakeClock
from tests.admin.support import admin_client, admin_stack, register, vend

NOW = int(dt.datetime(2026, 12, 4, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=5.5))).timestamp())
ISO_LOCAL = re.compile(r"^2026-12-04T00:30:\d\d\+05:30$")


async def test_orders_are_found_by_name_or_id_and_filters_survive_a_mistake(
    tmp_path: Path,
) -> None:
    async with admin_stack(tmp_path, clock=FakeClock(NOW)) as stack:
        await register(stack.services, "lobby-1", name="Lobby by the lifts")
        await register(stack.services, "gym-2", name="Gym 100% juice_bar")
        sold = await vend(stack.services, "lobby-1", 2)
        jammed = await vend(stack.services, "gym-2", 2, dispensed=1, client_id="client-00002")
        async with admin_client(stack) as admin:
            for typed, found, missing in (
                ("lifts", sold, jammed),  # part of a name, any case
                ("LOBBY", sold, jammed),
                ("gym-2", jammed, sold),  # an id
                ("100%", jammed, sold),  # LIKE's wildcards are plain characters
                ("0_j", None, sold),
            ):
                page = await admin.get("/admin/orders", params={"machine": typed})
                assert page.status_code == 200, page.text
                assert missing not in page.text
                if found is not None:
                    assert found in page.text
            wrong = await admin.get(
                "/admin/orders", params={"machine": "lifts", "from": "2026-13-01", "status": "x"}
            )
            assert wrong.status_code == 400
            assert 'id="e-from"' in wrong.text and 'id="e-status"' in wrong.text
            assert 'value="lifts"' in wrong.text  # what was typed stays
            assert sold in wrong.text and jammed not in wrong.text  # the rest still applies
            page = await admin.get("/admin/orders")
            shown = re.sub(r"<[^>]+>", " ", page.text.split("<tbody>")[1])  # the words, no tags
            assert "refund_pending" not in shown and "refund pending" in shown
            assert re.search(r'class="pill partial">partial refund pending<', page.text)
            assert re.search(r'class="pill dispensed">dispensed<', page.text)
            assert "2026-12-04 00:30" in page.text and "IST" in page.text


async def test_the_csv_opens_in_spreadsheets_with_local_times(tmp_path: Path) -> None:
    async with admin_stack(tmp_path, clock=FakeClock(NOW)) as stack:
        await register(stack.services, "lobby-1", name="Lobby ₹ corner")
        sold = await vend(stack.services, "lobby-1", 2)
        jammed = await vend(stack.services, "lobby-1", 2, dispensed=1, client_id="client-00002")
        await stack.services.feedback.give(sold, "client-00001", "up", None)
        async with admin_client(stack) as admin:
            answer = await admin.get("/admin/orders.csv")
        assert answer.status_code == 200
        assert answer.content.startswith("\ufeff".encode())  # UTF-8 BOM
        assert re.search(r'filename="smartvend-orders-20261204-0030\d\d\.csv"', answer.headers[
            "content-disposition"])  # fmt: skip
        rows = {r["order_id"]: r for r in csv.DictReader(io.StringIO(answer.content.decode(
            "utf-8-sig")))}  # fmt: skip
        assert ISO_LOCAL.match(rows[sold]["created_at"]) and ISO_LOCAL.match(rows[sold]["paid_at"])
        assert rows[sold]["machine_name"] == "Lobby ₹ corner"
        assert (rows[sold]["unit_price"], rows[sold]["amount"], rows[sold]["rating"]) == (
            "25.00", "50.00", "up")  # fmt: skip
        assert rows[jammed]["refund_reason"] == "not all units came out"
        assert rows[jammed]["refunded"] == "25.00" and rows[jammed]["rating"] == ""
        bad = await admin_get_csv(stack, {"from": "04/12/2026"})
        assert bad.status_code == 400


async def admin_get_csv(stack: object, params: dict[str, str]):  # type: ignore[no-untyped-def]
    async with admin_client(stack) as admin:  # type: ignore[arg-type]
        return await admin.get("/admin/orders.csv", params=params)
