"""Sales reports on a running server: local days, groups, refunds with their reasons,
CSV for spreadsheets, and users limited to locations seeing only theirs."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import httpx
from sqlalchemy import select

from api.clock import FakeClock, LocalCalendar
from api.services.container import Services
from api.services.machines import NewMachine
from schema.models import Refund, WebhookDelivery
from tests.admin.support import admin_stack, login, vend
from tests.operators.support import PASSWORD, bearer, make_user, token_of
from tests.support.stack import ADMIN_PASSWORD

pytest_plugins = ["tests.support.db_fixtures"]

IST = LocalCalendar("Asia/Kolkata")
# 2027-01-15 00:30 in Kolkata: still the 14th in UTC.
JUST_AFTER_MIDNIGHT = IST.midnight(dt.date(2027, 1, 15)) + 30 * 60


async def _machine(services: Services, mid: str, name: str, location: str) -> None:
    await services.machines.register(
        NewMachine(
            machine_id=mid,
            name=name,
            location=location,
            price_amount=2500,
            capacity=10,
            stock=9,
        )
    )
    await services.machines.apply_status(mid, {"state": "online", "boot": 1, "fw": "1.0.0"})


async def _sales(services: Services) -> tuple[str, str]:
    """Lobby (Tower A) sells 2, refunded ₹5 by hand; Gym (Tower B) sells 1 of 2 (jam)."""
    await _machine(services, "lobby-1", "Lobby", "Tower A")
    await _machine(services, "gym-2", "Gym", "Tower B")
    await services.outgoing_webhooks.create("http://127.0.0.1:9/hook", ["refund"], by="admin")
    lobby = await vend(services, "lobby-1", 2)
    gym = await vend(services, "gym-2", 2, dispensed=1, client_id="client-00002")
    await services.manual_refunds.refund(lobby, 500, by="admin", reason="one was warm")
    await services.feedback.give(lobby, "client-00001", "up", "cold")
    return lobby, gym


async def _report(http: httpx.AsyncClient, token: str, **query: str) -> httpx.Response:
    return await http.get("/api/reports", params=query, headers=bearer(token))


async def test_a_day_by_machine_location_and_product_in_local_days(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock(JUST_AFTER_MIDNIGHT)
    async with admin_stack(tmp_path, clock=clock, database_url=database_url) as stack:
        lobby, _ = await _sales(stack.services)
        async with httpx.AsyncClient(base_url=stack.url) as http:
            token = await token_of(http, "admin", ADMIN_PASSWORD)
            day = (await _report(http, token, period="day")).json()
            assert (day["from"], day["to"], day["timezone"]) == ("2027-01-15",) * 2 + (
                "Asia/Kolkata",
            )
            assert day["totals"] == {
                "units": 3,
                "amount": 7500,
                "refunded": 500,
                "net": 7000,
                "thumbs_up": 1,
                "thumbs_down": 0,
            }
            rows = {r["key"]: r for r in day["rows"]}
            assert [r["key"] for r in day["rows"]] == ["lobby-1", "gym-2"]  # best first
            assert (rows["lobby-1"]["net"], rows["lobby-1"]["location"]) == (4500, "Tower A")
            assert (rows["gym-2"]["units"], rows["gym-2"]["amount"]) == (1, 2500)
            assert len(day["bars"]) == 24 and day["bars"][0]["local"] == "2027-01-15T00:00:00+05:30"
            assert day["bars"][0]["units"] == 3  # the 00:30 vends are in the first hour

            # The day before in Kolkata is empty, though it is the same UTC day.
            before = (await _report(http, token, period="day", date="2027-01-14")).json()
            assert before["totals"]["units"] == 0
            assert [(r["key"], r["units"]) for r in before["rows"]] == [
                ("gym-2", 0),
                ("lobby-1", 0),
            ]

            places = (await _report(http, token, period="week", group="location")).json()
            assert (places["from"], places["to"]) == ("2027-01-11", "2027-01-17")  # Mon-Sun
            assert {r["key"]: r["net"] for r in places["rows"]} == {
                "Tower A": 4500,
                "Tower B": 2500,
            }
            products = (await _report(http, token, period="month", group="product")).json()
            assert (products["from"], products["to"]) == ("2027-01-01", "2027-01-31")
            assert sorted((r["name"], r["units"]) for r in products["rows"]) == [
                ("Gym", 1),
                ("Lobby", 2),
            ]
            assert products["totals"]["refunded"] == 500  # a refund is the order's, not a product's
            slots = (await _report(http, token, period="day", group="slot")).json()
            assert sorted(
                (r["key"], r["name"], r["location"], r["units"]) for r in slots["rows"]
            ) == [
                ("gym-2/1", "Gym · slot 1", "Tower B", 1),
                ("lobby-1/1", "Lobby · slot 1", "Tower A", 2),
            ]

            ranged = await _report(http, token, period="range", **{"from": "2027-01-01"})
            assert ranged.status_code == 400
            for bad in (
                {"period": "range", "from": "2027-01-10", "to": "2027-01-01"},
                {"period": "range", "from": "2025-01-01", "to": "2027-01-01"},
                {"period": "day", "date": "2027-02-30"},
                {"period": "fortnight"},
                {"group": "colour"},
                {"machine": "lobby-1"},
                {"period": "week", "from": "2027-01-01"},
            ):
                answer = await _report(http, token, **bad)
                assert answer.status_code == 400, (bad, answer.text)
                assert answer.json()["error"]["code"] == "invalid_request"
            assert (
                await _report(
                    http, token, period="range", **{"from": "2027-01-14", "to": "2027-01-15"}
                )
            ).json()["totals"]["net"] == 7000

        async with stack.services.ctx.db() as s:
            refund = (await s.scalars(select(Refund).where(Refund.order_id == lobby))).one()
            bodies = (await s.scalars(select(WebhookDelivery.body))).all()
        assert refund.note == "one was warm"  # kept with the refund, not only in the audit
        events = [json.loads(b)["data"] for b in bodies]
        manual = [e for e in events if e.get("manual")]
        assert manual and manual[0]["note"] == "one was warm"


async def test_users_limited_to_locations_see_only_theirs_in_json_page_and_csv(
    tmp_path: Path,
) -> None:
    clock = FakeClock(JUST_AFTER_MIDNIGHT)
    async with admin_stack(tmp_path, clock=clock) as stack:
        lobby, gym = await _sales(stack.services)
        await make_user(stack.services, "tower-b", "viewer", ["Tower B"])
        async with httpx.AsyncClient(base_url=stack.url) as http:
            token = await token_of(http, "tower-b")
            mine = (await _report(http, token, period="week")).json()
            assert [r["key"] for r in mine["rows"]] == ["gym-2"]
            assert mine["totals"]["amount"] == 2500 and mine["totals"]["refunded"] == 0
            assert mine["totals"]["thumbs_up"] == 0  # the lobby's rating is not theirs
            window = {"since": JUST_AFTER_MIDNIGHT - 3600, "until": JUST_AFTER_MIDNIGHT + 86_400}
            answer = await http.get("/api/reports/sales", params=window, headers=bearer(token))
            slots = answer.json()
            assert [x["machine_id"] for x in slots["by_slot"]] == ["gym-2"]
            assert [(p["product"]["name"], p["units"]) for p in slots["by_product"]] == [("Gym", 1)]

        async with httpx.AsyncClient(base_url=stack.url) as page:
            assert (await login(page, "tower-b", PASSWORD)).status_code == 303
            html = (await page.get("/admin/reports")).text
            assert "gym-2" in html and "lobby-1" not in html and "Lobby" not in html
            sheet = await page.get("/admin/reports.csv", params={"period": "week"})
            assert {r["order_id"] for r in _csv(sheet)} == {gym}

        async with httpx.AsyncClient(base_url=stack.url) as page:
            assert (await login(page)).status_code == 303
            sheet = await page.get("/admin/reports.csv", params={"period": "week"})
            assert sheet.headers["content-type"] == "text/csv; charset=utf-8"
            assert sheet.content.startswith(b"\xef\xbb\xbf")  # the BOM spreadsheets need
            rows = {r["order_id"]: r for r in _csv(sheet)}
            assert set(rows) == {lobby, gym}
            sold = rows[lobby]
            assert sold["finished_at"] == "2027-01-15T00:30:00+05:30"
            assert (sold["unit_price"], sold["amount"], sold["dispensed"]) == (
                "25.00",
                "50.00",
                "2",
            )
            assert sold["refund_reason"] == "refunded by an operator: one was warm"
            assert (sold["order_refunded"], sold["rating"]) == ("5.00", "up")
            assert sold["location"] == "Tower A"
            assert rows[gym]["refund_reason"] == "not all units came out"
            orders = {r["order_id"]: r for r in _csv(await page.get("/admin/orders.csv"))}
            assert orders[lobby]["refund_reason"] == "refunded by an operator: one was warm"
            bad = await page.get("/admin/reports.csv", params={"period": "range"})
            assert bad.status_code == 400


def _csv(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
