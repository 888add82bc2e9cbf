"""The guessing defences as the shopper API answers them."""

import httpx

from tests.http.conftest import display_code
from tests.support.stack import Stack


def wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


async def test_a_machine_out_of_budget_says_how_long_to_wait(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    code = await display_code(stack, machine)
    for i in range(stack.services.ctx.policy.code_failure_budget):
        answer = await http.post(
            "/api/lock-by-code",
            json={"code": wrong(code), "client_id": f"guesser-{i:04d}", "machine_id": machine},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_code"
    fresh = await display_code(stack, machine)
    assert fresh != code
    answer = await http.post(
        "/api/lock-by-code",
        json={"code": fresh, "client_id": "honest-shopper", "machine_id": machine},
    )
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answer.headers["Retry-After"]) <= 60


async def test_code_only_guesses_ask_for_the_machine_when_the_fleet_budget_is_spent(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    code = await display_code(stack, machine)
    for i in range(stack.services.ctx.policy.fleet_code_only_limit):
        answer = await http.post(
            "/api/lock-by-code", json={"code": wrong(code), "client_id": f"guesser-{i:04d}"}
        )
        assert answer.json()["error"]["code"] == "invalid_code"
    answer = await http.post(
        "/api/lock-by-code", json={"code": code, "client_id": "honest-shopper"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "machine_required"
    answer = await http.post(
        "/api/lock-by-code",
        json={"code": code, "client_id": "honest-shopper", "machine_id": machine},
    )
    assert answer.status_code == 200
    assert answer.json()["machine_id"] == machine
