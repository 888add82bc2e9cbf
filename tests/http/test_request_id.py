"""Every answer names its request; a 500 is logged with its traceback under that name."""

import logging
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack


async def test_every_answer_carries_a_request_id(stack: Stack, http: httpx.AsyncClient) -> None:
    first = await http.get("/healthz")
    second = await http.get("/api/machine/nope/public-status")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(i) >= 8 for i in ids) and ids[0] != ids[1]
    assert second.status_code == 404
    kept = await http.get("/healthz", headers={"X-Request-Id": "proxy-req-12345678"})
    assert kept.headers["x-request-id"] == "proxy-req-12345678"
    odd = await http.get("/healthz", headers={"X-Request-Id": "bad id\twith junk"})
    assert odd.headers["x-request-id"] != "bad id\twith junk"


async def test_a_500_is_logged_with_traceback_and_request_id(
    stack: Stack,
    http: httpx.AsyncClient,
    machine: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the view broke here")

    monkeypatch.setattr(stack.services.views, "public_status", broken)
    with caplog.at_level(logging.ERROR):
        r = await http.get(f"/api/machine/{machine}/public-status", params={"client_id": "c-1"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    request_id = r.headers["x-request-id"]
    assert request_id in r.json()["error"]["message"]
    [record] = [rec for rec in caplog.records if getattr(rec, "request_id", None) == request_id]
    assert record.exc_info is not None and "the view broke here" in str(record.exc_info[1])
    assert "/public-status" in record.getMessage() and request_id in record.getMessage()
    # and the server goes on answering
    assert (await http.get("/healthz")).status_code == 200
