"""POST /api/orders/{order_id}/feedback (CONTRACT section 2), and item-by-item progress."""

import httpx

from api.views.feedback import FeedbackViews
from tests.http.conftest import CLIENT
from tests.http.test_shopper_api import assert_error, paid_order
from tests.support.services import unfinished_commands
from tests.support.stack import Stack


async def vend(stack: Stack, http: httpx.AsyncClient, machine: str, quantity: int = 2) -> str:
    proof, order = await paid_order(stack, http, machine, quantity)
    assert (await http.post("/verify-payment", json=proof)).status_code == 200
    return str(order["order_id"])


async def finish(stack: Stack, machine: str, dispensed: int) -> None:
    cmd = (await unfinished_commands(stack.services))[0]
    status = "succeeded" if dispensed == cmd.quantity else "failed"
    assert await stack.services.dispense.apply_result(machine, cmd.id, status, dispensed)


async def test_feedback_once_per_finished_order_by_its_shopper(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    order_id = await vend(stack, http, machine)
    url = f"/api/orders/{order_id}/feedback"
    assert_error(
        await http.post(url, json={"client_id": CLIENT, "rating": "up"}), 409, "order_not_finished"
    )
    await finish(stack, machine, 2)
    assert_error(
        await http.post(url, json={"client_id": "someone-else-1", "rating": "up"}),
        403,
        "not_order_owner",
    )
    for bad in (
        {"client_id": CLIENT, "rating": "meh"},
        {"client_id": CLIENT},
        {"client_id": CLIENT, "rating": "up", "comment": "x" * 501},
        {"client_id": CLIENT, "rating": "up", "comment": 5},
    ):
        assert_error(await http.post(url, json=bad), 400, "invalid_request")
    assert_error(
        await http.post(
            "/api/orders/ord_nope/feedback", json={"client_id": CLIENT, "rating": "up"}
        ),
        404,
        "order_not_found",
    )
    given = await http.post(
        url, json={"client_id": CLIENT, "rating": "down", "comment": " " + "é" * 498 + " "}
    )
    assert given.status_code == 201, given.text
    assert given.json()["rating"] == "down" and given.json()["comment"] == "é" * 498
    again = await http.post(url, json={"client_id": CLIENT, "rating": "up"})
    assert_error(again, 409, "feedback_exists")
    stored = await FeedbackViews(stack.services.ctx).recent(machine)
    assert [(f.order_id, f.rating) for f in stored] == [(order_id, "down")]
    tally = await FeedbackViews(stack.services.ctx).tally(machine)
    assert (tally.up, tally.down, tally.share_up) == (0, 1, 0.0)


async def test_feedback_is_rate_limited_per_shopper(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    url = "/api/orders/ord_unknown/feedback"
    for _ in range(10):
        r = await http.post(url, json={"client_id": CLIENT, "rating": "up"})
        assert r.status_code == 404
    limited = await http.post(url, json={"client_id": CLIENT, "rating": "up"})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Another shopper at the same address is not refused for it.
    other = await http.post(url, json={"client_id": "another-shopper", "rating": "up"})
    assert other.status_code == 404


async def test_an_empty_comment_is_no_comment(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    order_id = await vend(stack, http, machine, quantity=1)
    await finish(stack, machine, 0)  # nothing came out: refunded, and still worth rating
    r = await http.post(
        f"/api/orders/{order_id}/feedback",
        json={"client_id": CLIENT, "rating": "down", "comment": ""},
    )
    assert r.status_code == 201 and r.json()["comment"] is None


async def test_each_unit_shows_in_the_order_as_it_drops(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    order_id = await vend(stack, http, machine, quantity=3)
    cmd = (await unfinished_commands(stack.services))[0]
    seen = []
    for status, out in (("accepted", 0), ("running", 0), ("running", 1), ("running", 2)):
        assert await stack.services.dispense.apply_result(machine, cmd.id, status, out) or out == 0
        view = (await http.get(f"/api/orders/{order_id}")).json()
        seen.append((view["status"], view["dispensed"]))
    assert seen == [("dispensing", 0), ("dispensing", 0), ("dispensing", 1), ("dispensing", 2)]
    # A late or repeated progress report never moves the count back.
    assert not await stack.services.dispense.apply_result(machine, cmd.id, "running", 1)
    assert await stack.services.dispense.apply_result(machine, cmd.id, "succeeded", 3)
    view = (await http.get(f"/api/orders/{order_id}")).json()
    assert (view["status"], view["dispensed"], view["refund"]) == ("dispensed", 3, None)
