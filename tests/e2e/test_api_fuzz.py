"""Schemathesis against /openapi.json of the running server.

For every operation: schemathesis' coverage cases (boundary values, wrong types,
missing fields, unlisted methods) and Hypothesis-generated valid and invalid
input, sent with an admin's token and, for the device fallback, a real machine's
id and key. No answer may be a 5xx, every answer must match the document, and
input the document rules out must be refused.
"""

import asyncio
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, CheckFunction, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.e2e import flow
from tests.support.stack import ADMIN_PASSWORD, running_stack

EXAMPLES = 25  # per operation and generation mode
SHARDS = 4  # the operations are fuzzed in this many tests
MID = "fuzz-1"
MACHINE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DEVICE_PATHS = (
    "/api/machine/{mid}/status",
    "/api/machine/{mid}/confirm",
    "/api/machine/{mid}/report-error",
)
CONFORMANCE: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Operations whose every valid request succeeds, whatever the server holds.
ALWAYS_ACCEPT = {
    "GET /api/machines",
    "GET /api/admin/verify",
    "POST /low-stock-alert",
    "GET /api/machine/{mid}/status",
    "POST /api/machine/{mid}/report-error",
}
# Operations that succeed with good credentials, and how.
AUTHENTICATED = {
    "GET /api/admin/verify": 200,
    "GET /api/machine/{mid}/status": 200,
    "POST /api/machine/register": 201,
}
CHECKS: dict[GenerationMode, list[CheckFunction]] = {
    GenerationMode.POSITIVE: CONFORMANCE,
    GenerationMode.NEGATIVE: [*CONFORMANCE, negative_data_rejection, unsupported_method],
}


@dataclass
class Findings:
    failures: dict[str, str] = field(default_factory=dict)  # the first of each kind
    calls: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)  # the whole document's
    fuzzed: int = 0  # by this shard

    def add(self, label: str, error: BaseException, curl: str) -> None:
        first = str(error).strip().splitlines()[:1]
        key = f"{label}: {type(error).__name__}: {first}"
        self.failures.setdefault(key, f"{label}\n{error}\n  reproduce: {curl}")


@dataclass
class Caller:
    base_url: str
    admin_token: str
    machine_key: str
    logout_token: str  # another admin's: logging out revokes its tokens, not the main one's
    findings: Findings = field(default_factory=Findings)
    session: requests.Session = field(default_factory=requests.Session)

    def headers(self, operation: APIOperation) -> dict[str, str]:
        if operation.path in DEVICE_PATHS:
            return {"Authorization": f"Bearer {self.machine_key}"}
        if operation.path == "/api/admin/logout":
            return {"Authorization": f"Bearer {self.logout_token}"}
        if operation.security:
            return {"Authorization": f"Bearer {self.admin_token}"}
        return {}

    def send(self, operation: APIOperation, case: Case) -> None:
        if operation.path in DEVICE_PATHS and MACHINE_ID.match(str(case.path_parameters["mid"])):
            case.path_parameters = {**case.path_parameters, "mid": MID}  # the keyed machine
        headers = self.headers(operation)
        response = case.call(
            base_url=self.base_url, session=self.session, headers=headers, timeout=10
        )
        self.findings.calls += 1
        self.findings.statuses.setdefault(operation.label, set()).add(response.status_code)
        mode = case.meta.generation.mode if case.meta else GenerationMode.POSITIVE
        checks = CHECKS[mode]
        if mode is GenerationMode.POSITIVE and operation.label in ALWAYS_ACCEPT:
            checks = [*checks, positive_data_acceptance]
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (Exception, BaseExceptionGroup) as error:  # collected into one report
            self.findings.add(operation.label, error, case.as_curl_command(headers=headers))


def coverage_cases(schema: Any, operation: APIOperation) -> Iterator[Case]:
    yield from schema.iter_coverage_cases(
        operation,
        generation_modes=list(CHECKS),
        generation_config=schema.config.generation_for(operation=operation),
    )


def fuzz_operation(caller: Caller, operation: APIOperation, mode: GenerationMode) -> None:
    device = operation.path in DEVICE_PATHS
    strategy = operation.as_strategy(mode, path_parameters={"mid": MID} if device else None)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Case) -> None:
        caller.send(operation, case)

    with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: no input at all
        one()


def fuzz(caller: Caller, shard: int) -> Findings:
    """Blocking: runs in a worker thread while the server serves in the test's loop.

    Fuzzes every ``SHARDS``-th operation from ``shard`` on, so that each part of the
    document gets its own test and time limit."""
    schema = schemathesis.openapi.from_url(f"{caller.base_url}/openapi.json")
    with caller.session:
        for n, result in enumerate(schema.get_all_operations()):
            operation = result.ok()
            caller.findings.operations.append(operation.label)
            if n % SHARDS != shard:
                continue
            caller.findings.fuzzed += 1
            for case in coverage_cases(schema, operation):
                caller.send(operation, case)
            for mode in CHECKS:
                fuzz_operation(caller, operation, mode)
    return caller.findings


@pytest.mark.parametrize("shard", range(SHARDS))
async def test_openapi_fuzz_finds_no_5xx_and_no_schema_drift(tmp_path: Path, shard: int) -> None:
    async with (
        running_stack(tmp_path, mqtt=False) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        key = await flow.register(stack.services, MID, stock=5)
        await stack.services.machines.apply_status(MID, {"state": "online", "boot": 1})
        login = await http.post(
            "/api/admin/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        await stack.services.admins.create("leaver", "leaver-password-1")
        leaver = await http.post(
            "/api/admin/login", json={"username": "leaver", "password": "leaver-password-1"}
        )
        caller = Caller(stack.url, login.json()["token"], key, leaver.json()["token"])
        findings = await asyncio.to_thread(fuzz, caller, shard)

    assert not findings.failures, "\n\n".join(findings.failures.values())
    assert len(findings.operations) >= 59, "the document lost operations"
    assert set(AUTHENTICATED) <= set(findings.operations)
    assert len(findings.statuses) == findings.fuzzed >= len(findings.operations) // SHARDS
    assert findings.calls > findings.fuzzed * EXAMPLES, findings.statuses
    # the credentials were good: authenticated operations got past authentication
    for label, status in AUTHENTICATED.items():
        if label in findings.statuses:
            assert status in findings.statuses[label], (label, findings.statuses[label])
