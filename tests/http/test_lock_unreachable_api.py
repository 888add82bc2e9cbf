"""A shopper at a machine that cannot sell hears so before the code is judged (issue 23).

Named in the request, an offline or out-of-service machine answers 503 whatever the
code: the shopper is not told their code "doesn't match", nothing is counted against
anyone's budget, and the code on the display stays as it was.
"""

import httpx

from tests.http.conftest import display_code
from tests.http.test_code_guessing_api import wrong
from tests.support.stack import Stack


async def lock(
    http: httpx.AsyncClient, code: str, machine: str | None, n: int = 0
) -> httpx.Response:
    body = {"code": code, "client_id": f"shopper-{n:04d}"}
    if machine is not None:
        body["machine_id"] = machine
    return await http.post("/api/lock-by-code", json=body)


async def test_an_offline_machine_says_so_before_judging_the_code(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    code = await display_code(stack, machine)
    await stack.services.machines.apply_status(machine, {"state": "offline", "boot": 1})
    budget = stack.services.ctx.policy.code_failure_budget
    for n in range(budget + 2):  # more than the machine's budget of wrong codes
        answer = await lock(http, wrong(code), machine, n)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "machine_offline"
    answer = await lock(http, code, machine)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "machine_offline"
    assert await display_code(stack, machine) == code  # no failure counted: same code
    await stack.services.machines.apply_status(machine, {"state": "online", "boot": 2})
    answer = await lock(http, code, machine)
    assert answer.status_code == 200, answer.text  # no budget was spent meanwhile
    assert answer.json()["machine_id"] == machine


async def test_an_out_of_service_machine_says_so_before_judging_the_code(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    code = await display_code(stack, machine)
    await stack.services.machines.set_mode(machine, "out_of_service")
    for guess in (wrong(code), code):
        answer = await lock(http, guess, machine)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "machine_out_of_service"
    # By the code alone a wrong code names no machine: that is all it can be told.
    answer = await lock(http, wrong(code), None)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_code"
    answer = await lock(http, code, None)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "machine_out_of_service"
    await stack.services.machines.set_mode(machine, "in_service")
    answer = await lock(http, await display_code(stack, machine), machine)
    assert answer.status_code == 200, answer.text
