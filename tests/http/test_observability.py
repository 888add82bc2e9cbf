"""/healthz, /readyz and /metrics on a real server."""

import asyncio
from pathlib import Path

import aiomqtt
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

from api.http.timing import route_template
from api.infra.db import create_engine
from api.observability import metrics
from api.observability.readiness import problems
from api.payments.razorpay_gateway import RazorpayGateway
from tests.fakes.razorpay_server import razorpay_fake
from tests.support.databases import migrate_async, sqlite_url
from tests.support.ports import free_port
from tests.support.stack import Stack, running_stack


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition as ``{(name, sorted labels): value}``."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_healthz_answers_while_the_process_lives(http: httpx.AsyncClient) -> None:
    answer = await http.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


async def test_readyz_names_a_schema_that_is_not_at_head(http: httpx.AsyncClient) -> None:
    # The test stack builds its tables from the models, without Alembic's revision.
    answer = await http.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready" and set(body["problems"]) == {"schema"}
    assert "migrate" in body["problems"]["schema"]


async def test_readyz_ready_on_a_migrated_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await migrate_async(url)
    async with (
        running_stack(tmp_path, mqtt=False, database_url=url) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        answer = await http.get("/readyz")
        assert (answer.status_code, answer.json()) == (200, {"status": "ready"})


async def test_readyz_names_a_broker_it_cannot_reach(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await migrate_async(url)
    nobody = f"mqtt://127.0.0.1:{free_port()}"
    async with (
        running_stack(tmp_path, mqtt=True, database_url=url, mqtt_url=nobody) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert set(answer.json()["problems"]) == {"broker"}


async def test_metrics_label_routes_by_template_and_read_the_database(
    stack: Stack, http: httpx.AsyncClient, machine: str
) -> None:
    for order in ("order-a", "order-b", "order-c"):
        assert (await http.get(f"/api/orders/{order}")).status_code == 404
    assert (await http.get("/no/such/page")).status_code == 404
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    count = "smartvend_http_request_duration_seconds_count"
    by_template = (("method", "GET"), ("route", "/api/orders/{order_id}"), ("status", "404"))
    assert found[(count, by_template)] >= 3
    assert found[(count, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] >= 1
    assert not [key for key in found if "order-a" in str(key)]  # raw paths never become labels
    # Registering the machine wrote its desired and state to the outbox; no MQTT drains it.
    assert found[("smartvend_outbox_depth", ())] >= 2
    assert found[("smartvend_outbox_oldest_age_seconds", ())] >= 0
    assert found[("smartvend_vends", (("outcome", "succeeded"),))] == 0
    assert found[("smartvend_refunds", (("status", "pending"),))] == 0
    assert found[("smartvend_leader", ())] >= 1  # SQLite: the one process leads
    assert found[("smartvend_db_pool_connections", (("state", "open"),))] >= 1


async def test_gateway_calls_are_timed_by_operation() -> None:
    before = samples(metrics.exposition().decode())
    key = ("smartvend_gateway_call_duration_seconds_count", (("operation", "create order"),))
    async with razorpay_fake() as fake:
        gateway = RazorpayGateway(
            fake.key_id, fake.key_secret, fake.webhook_secret, base_url=fake.base_url, timeout=5
        )
        await gateway.create_order(amount=2500, currency="INR", receipt="r-1", notes={})
    after = samples(metrics.exposition().decode())
    assert after[key] == before.get(key, 0) + 1


def test_route_templates_of_mounts_and_unknown_paths() -> None:
    async def page(_request: object) -> None:  # never called
        raise AssertionError

    routes = [
        Route("/api/orders/{order_id}", page),
        Mount("/static", app=page),
        Mount("/admin", routes=[Route("/machines/{mid}", page)]),
    ]

    def scope(path: str) -> dict[str, object]:
        return {"type": "http", "method": "GET", "path": path, "root_path": ""}

    assert route_template(routes, scope("/api/orders/o-1")) == "/api/orders/{order_id}"
    assert route_template(routes, scope("/static/app.css")) == "/static/{path}"
    assert route_template(routes, scope("/admin/machines/m-1")) == "/admin/machines/{mid}"
    assert route_template(routes, scope("/nowhere")) == "unmatched"


async def test_readiness_names_a_database_it_cannot_reach() -> None:
    engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        found = await problems(engine, lambda: True)
    finally:
        await engine.dispose()
    assert set(found) == {"database"} and found["database"].startswith("unreachable")


async def test_metrics_show_the_embedded_brokers_counters(tmp_path: Path) -> None:
    async with (
        running_stack(tmp_path, mqtt=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
    ):
        async with asyncio.timeout(20):
            await stack.runtime.mqtt.bridge.connected.wait()
        intruder = aiomqtt.Client(
            "127.0.0.1", stack.settings.mqtt_port, username="nobody", password="wrong", timeout=10
        )
        with pytest.raises(aiomqtt.MqttError):
            async with intruder:
                pass
        found = samples((await http.get("/metrics")).text)
    refused = ("smartvend_embedded_broker_events", (("event", "connects_refused"),))
    assert found[refused] == 1
    assert found[("smartvend_embedded_broker_events", (("event", "oversize_dropped"),))] == 0
    assert found[("smartvend_embedded_broker_clients", ())] == 1  # the server's own bridge
