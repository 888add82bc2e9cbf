"""Three workers (`smartvend serve --workers 3`) on PostgreSQL and Mosquitto, two killed with -9.

Shoppers buy on every machine at once, each request on a new connection so the
kernel spreads them over the workers; the leader and then a follower are
killed while purchases are in flight. In the end every paid order is dispensed
or refunded exactly once, stock adds up on the server and on the machines, no
order got two commands, no machine ran a unit twice, and presence is right.
Then one more purchase is followed by order pages open on several workers: each
page sees the status changes, whichever worker made them (LISTEN/NOTIFY).
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api.mqtt.accounts import server_credentials
from api.mqtt.mosquitto import CONF_FILE, write_mosquitto_config
from api.server.runtime import open_runtime
from api.services.container import Services
from device.virtual import VirtualMachine
from schema import topics
from schema.models import Command, Machine, Order, Payment, Refund
from tests.e2e import flow
from tests.e2e.external import running_mosquitto
from tests.fakes.razorpay_server import RazorpayFake, razorpay_fake
from tests.support import stack
from tests.support.databases import migrate_async
from tests.support.workers import CONNECTED, Workers, serve_workers

pytest_plugins = ["tests.support.db_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(240)]

GOOD = [f"w-{n}" for n in range(1, 6)]
DUD = "w-dud"  # every unit fails to fall: its orders are refunded
STOCK = 20
PRICE = 2500
ROUNDS = 3  # purchases per machine, one after the other
KILL_LEADER_AT = 4  # paid orders before the leader is killed
KILL_FOLLOWER_AT = 10
TAKEOVER_LIMIT_S = 5.0
SHOPPER_PATHS = ("/api/lock-by-code", "/create-order", "/verify-payment")
LOCK_TTL_S = 8  # a lock whose shopper lost its answer frees the machine soon
PURCHASE_LIMIT_S = 90.0
PROBES = 300  # new connections within which every worker has answered one
PAGES = 12  # order pages opened for the last purchase, each on a new connection
LIFECYCLE = ["created", "paid", "dispensing", "dispensed"]


@dataclass
class Shoppers:
    url: str
    fake: RazorpayFake
    paid: list[str] = field(default_factory=list)
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    def client(self) -> httpx.AsyncClient:
        """No keep-alive: every request is a new connection, to whichever worker accepts it."""
        return httpx.AsyncClient(
            base_url=self.url, timeout=15, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def post(self, path: str, body: dict[str, Any], *, retry: bool) -> httpx.Response:
        """POST; a connection a killed worker dropped is retried when ``retry`` (idempotent)."""
        deadline = time.monotonic() + flow.WAIT_S
        async with self.client() as http:
            while True:
                try:
                    return await http.post(path, json=body)
                except httpx.TransportError:
                    if not retry or time.monotonic() > deadline:
                        raise

    async def buy(self, vm: VirtualMachine, client_id: str, quantity: int) -> str:
        """One purchase, as a shopper who starts again when a worker dies under them.

        After a failed attempt the shopper waits for a new code (a lock whose answer
        was lost frees the machine after ``LOCK_TTL_S``, and the LCD moves on), or
        else tries the code shown. A purchase that cannot finish says why each
        attempt failed."""
        failures: list[str] = []
        deadline = time.monotonic() + PURCHASE_LIMIT_S
        code = await flow.lcd_code(vm)
        while True:
            try:
                return await self._attempt(code, client_id, quantity)
            except (httpx.TransportError, AssertionError) as exc:
                failures.append(f"code {code}: {exc!r}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{client_id} could not buy: {failures}") from exc
            with contextlib.suppress(TimeoutError):
                await flow.lcd_code(vm, other_than=code, within=2 * LOCK_TTL_S)
            code = await flow.lcd_code(vm)

    async def _attempt(self, code: str, client_id: str, quantity: int) -> str:
        lock = await self.post(
            "/api/lock-by-code", {"code": code, "client_id": client_id}, retry=False
        )
        assert lock.status_code == 200, lock.text
        created = await self.post(
            "/create-order",
            {"session_id": lock.json()["session_id"], "client_id": client_id, "quantity": quantity},
            retry=False,
        )
        assert created.status_code == 200, created.text
        order = created.json()
        payment_id, signature = self.fake.pay(order["gateway_order_id"])
        proof = {
            "razorpay_order_id": order["gateway_order_id"],
            "razorpay_payment_id": payment_id,
            "razorpay_signature": signature,
        }
        verified = await self.post("/verify-payment", proof, retry=True)  # paid: never give up
        assert verified.status_code == 200, verified.text
        async with self.progress:
            self.paid.append(order["order_id"])
            self.progress.notify_all()
        return str(order["order_id"])

    async def wait_paid(self, count: int) -> None:
        async with asyncio.timeout(90), self.progress:
            await self.progress.wait_for(lambda: len(self.paid) >= count)


@contextlib.asynccontextmanager
async def mosquitto_with_worker_listener(
    services: Services, settings: Any
) -> AsyncIterator[tuple[int, int]]:
    """Mosquitto as `mosquitto-config --server-port` writes it: (machines', workers') ports."""
    creds = server_credentials(settings)

    async def configure(folder: Path, ports: list[int]) -> Path:
        device_port, server_port = ports
        await write_mosquitto_config(
            services.ctx.db,
            folder,
            port=device_port,
            host="127.0.0.1",
            server_username=creds.username,
            server_password=creds.password,
            server_port=server_port,
        )
        return folder / CONF_FILE

    async with running_mosquitto(2, configure) as (device_port, server_port):
        yield device_port, server_port


def follower(workers: Workers, first: set[int]) -> int:
    """A worker of the first three that is alive and does not lead."""
    leader = workers.leader()
    alive = sorted(pid for pid in first if pid != leader and workers.alive(pid))
    assert alive, "no follower left to kill"
    return alive[0]


async def test_three_workers_share_the_fleet_and_survive_kill_9(
    tmp_path: Path, postgresql_url: str
) -> None:
    await migrate_async(postgresql_url)
    settings = stack.test_settings(tmp_path, database_url=postgresql_url)
    async with (
        razorpay_fake() as fake,
        open_runtime(settings) as rt,
    ):
        services = rt.services
        keys = {mid: await flow.register(services, mid, stock=STOCK, price=PRICE, capacity=STOCK)
                for mid in [*GOOD, DUD]}  # fmt: skip
        async with mosquitto_with_worker_listener(services, settings) as (device_port, server_port):
            worker_settings = {
                "env": "test",
                "database_url": postgresql_url,
                "secret_key": stack.SECRET,
                "var_dir": str(tmp_path / "var"),
                "mqtt_url": f"mqtt://127.0.0.1:{server_port}",
                "razorpay_key_id": fake.key_id,
                "razorpay_key_secret": fake.key_secret,
                "razorpay_webhook_secret": fake.webhook_secret,
                "razorpay_base_url": fake.base_url,
                "lock_ttl_s": str(LOCK_TTL_S),
                "alert_interval_s": "0",
            }
            creds = server_credentials(settings)
            async with (
                aiomqtt.Client(
                    "127.0.0.1",
                    server_port,
                    username=creds.username,
                    password=creds.password,
                    identifier="test-observer",
                ) as observer,
                CommandLog(observer) as sent,
                serve_workers(3, worker_settings, tmp_path) as workers,
                flow.fleet(device_port, [(mid, keys[mid]) for mid in GOOD]) as good,
                flow.fleet(device_port, [(DUD, keys[DUD])], fail_rate=1.0) as dud,
            ):
                first_pids = workers.pids(CONNECTED)
                assert len(first_pids) == 3
                await connections_reach(workers, first_pids)
                for mid in [*GOOD, DUD]:
                    await flow.wait_online(services, mid)
                shoppers = Shoppers(workers.url, fake)
                machines = {mid: good.machine(mid) for mid in GOOD} | {DUD: dud.machine(DUD)}

                async def customer(mid: str) -> None:
                    for n in range(ROUNDS):
                        await shoppers.buy(machines[mid], f"shopper-{mid}-{n}", 1 + n % 2)

                async def killer() -> tuple[float, int, int]:
                    await shoppers.wait_paid(KILL_LEADER_AT)
                    leader = workers.leader()
                    assert leader is not None
                    workers.kill(leader)
                    killed_at = time.monotonic()
                    await workers.wait(
                        lambda: workers.leader() not in (None, leader) and workers.leader(),
                        "a new leader",
                        TAKEOVER_LIMIT_S,
                    )
                    took = time.monotonic() - killed_at
                    await shoppers.wait_paid(KILL_FOLLOWER_AT)
                    victim = follower(workers, first_pids)
                    workers.kill(victim)
                    return took, leader, victim

                async with asyncio.TaskGroup() as tg:
                    kills = tg.create_task(killer())
                    for mid in machines:
                        tg.create_task(customer(mid))
                took, killed_leader, killed_follower = kills.result()
                print(f"leader takeover after kill -9 under load: {took:.2f} s")
                assert took < TAKEOVER_LIMIT_S

                paid = set(shoppers.paid)
                assert len(paid) == ROUNDS * len(machines)
                await settled(services, paid)
                await check_money_and_stock(services, fake, paid, machines)
                for mid in machines:  # presence: every machine online after all that
                    await flow.wait_online(services, mid)
                await metrics_cover_every_worker(workers.url)
                await check_commands_sent(services, sent)
                await pages_follow_changes_across_workers(shoppers, workers, good.machine(GOOD[0]))
                served = {  # the workers that answered shoppers (the kernel chose which)
                    int(line["pid"])
                    for line in workers.lines
                    if line.get("logger") == "uvicorn.access"
                    and any(path in str(line.get("message", "")) for path in SHOPPER_PATHS)
                }
                assert len(served & first_pids) >= 2, (served, first_pids)
                assert {killed_leader, killed_follower} <= first_pids
                assert not workers.alive(killed_leader) and not workers.alive(killed_follower)
                # LOG_FORMAT=json: the supervisor and every worker wrote JSON lines only.
                assert len(workers.lines) == len(workers.raw) > 0, [
                    raw for raw in workers.raw if not raw.startswith("{")
                ][:5]


async def connections_reach(workers: Workers, pids: set[int]) -> None:
    """New connections reach every worker: the kernel spreads them over the shared socket."""

    def answered() -> set[int]:
        return {
            int(line["pid"])
            for line in workers.lines
            if line.get("logger") == "uvicorn.access" and "/healthz?probe=" in str(line["message"])
        }

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=workers.url, timeout=10, limits=limits) as http:
        for n in range(PROBES):
            if pids <= answered():
                return
            assert (await http.get("/healthz", params={"probe": n})).status_code == 200
    await workers.wait(lambda: pids <= answered(), "a new connection answered by each worker", 10)


async def pages_follow_changes_across_workers(
    shoppers: Shoppers, workers: Workers, vm: VirtualMachine
) -> None:
    """Order pages held by several workers all see the order through to ``dispensed``.

    The payment is verified by one worker and the machine's results are applied by
    whichever worker the broker hands them to; with pages on two workers or more, every
    change reaches at least one page held by a worker that did not make it.
    """
    client_id = "shopper-watched"
    code = await flow.lcd_code(vm)
    lock = await shoppers.post(
        "/api/lock-by-code", {"code": code, "client_id": client_id}, retry=False
    )
    assert lock.status_code == 200, lock.text
    body = {"session_id": lock.json()["session_id"], "client_id": client_id, "quantity": 1}
    created = await shoppers.post("/create-order", body, retry=False)
    assert created.status_code == 200, created.text
    order = created.json()
    path = f"/api/orders/{order['order_id']}/events"
    seen: dict[int, list[str]] = {n: [] for n in range(PAGES)}
    opened: dict[int, asyncio.Event] = {n: asyncio.Event() for n in range(PAGES)}

    async def page(n: int) -> None:
        async with shoppers.client() as http, http.stream("GET", f"{path}?page={n}") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    seen[n].append(json.loads(line[6:])["status"])
                    opened[n].set()

    def holder(n: int) -> int | None:
        """The pid of the worker that answered page ``n`` (its access log line)."""
        for line in workers.lines:
            if line.get("logger") == "uvicorn.access" and f"?page={n} " in str(line["message"]):
                return int(line["pid"])
        return None

    async with asyncio.timeout(flow.WAIT_S * 2), asyncio.TaskGroup() as tg:
        for n in range(PAGES):
            tg.create_task(page(n))
            await opened[n].wait()  # one after the other: new connections, spread by the kernel
        holders = await workers.wait(
            lambda: (found := [holder(n) for n in range(PAGES)]) and None not in found and found,
            "the order pages' access log lines",
        )
        payment_id, signature = shoppers.fake.pay(order["gateway_order_id"])
        proof = {
            "razorpay_order_id": order["gateway_order_id"],
            "razorpay_payment_id": payment_id,
            "razorpay_signature": signature,
        }
        verified = await shoppers.post("/verify-payment", proof, retry=True)
        assert verified.status_code == 200, verified.text
    print(f"order pages held by workers {sorted(set(holders))}: {seen}")
    assert len(set(holders)) >= 2, holders  # pages on several workers
    for statuses in seen.values():
        assert statuses[0] == "created" and statuses[-1] == "dispensed", statuses
        assert statuses == sorted(set(statuses), key=LIFECYCLE.index), statuses
    assert any("dispensing" in statuses for statuses in seen.values())


class CommandLog:
    """Every non-empty ``cmd`` the broker carried, as ``{cmd_id: {payloads}}``."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: dict[str, set[bytes]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "CommandLog":
        await self.client.subscribe(topics.machine_filter("cmd"), qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            if isinstance(payload, bytes) and payload:
                cmd_id = topics.parse(message.topic.value)[2]
                assert cmd_id is not None
                self.seen.setdefault(cmd_id, set()).add(payload)


async def check_commands_sent(services: Services, sent: CommandLog) -> None:
    """One command per paid order went out; a command re-sent (retained, after a worker
    died) is the same message, never a second command."""
    async with services.ctx.db() as s:
        commands = set((await s.scalars(select(Command.id))).all())
    assert set(sent.seen) == commands
    assert all(len(payloads) == 1 for payloads in sent.seen.values())


def scrape(text: str) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def metrics_cover_every_worker(url: str) -> None:
    """Any worker's /metrics: one leader (the killed one forgotten), every worker's counts."""

    async def one_leader() -> dict[str, float] | None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            found = scrape((await http.get("/metrics")).text)
        return found if found.get("smartvend_leader[]") == 1 else None

    found: dict[str, float] = await flow.until(one_leader, "one leader in /metrics")
    results = "smartvend_mqtt_messages_total[('direction', 'in'), ('kind', 'results')]"
    assert found[results] >= ROUNDS * (len(GOOD) + 1)  # at least an accepted per command
    commands = "smartvend_mqtt_messages_total[('direction', 'out'), ('kind', 'cmd')]"
    assert found[commands] >= ROUNDS * (len(GOOD) + 1)
    assert found["smartvend_vends[('outcome', 'succeeded')]"] == ROUNDS * len(GOOD)


async def settled(services: Services, paid: set[str]) -> None:
    """Wait until every paid order has reached its end (refunds confirmed by the gateway)."""

    async def done() -> bool:
        async with services.ctx.db() as s:
            states = (await s.scalars(select(Order.status).where(Order.id.in_(paid)))).all()
        return len(states) == len(paid) and set(states) <= {"dispensed", "refunded"}

    await flow.until(done, "every paid order dispensed or refunded", within=60)


async def check_money_and_stock(
    services: Services, fake: RazorpayFake, paid: set[str], machines: dict[str, VirtualMachine]
) -> None:
    async with services.ctx.db() as s:
        orders = {o.id: o for o in (await s.scalars(select(Order))).all()}
        payments = (await s.scalars(select(Payment))).all()
        commands = (await s.scalars(select(Command))).all()
        refunds = (await s.scalars(select(Refund))).all()
        stock = dict((await s.execute(select(Machine.id, Machine.stock))).all())
    # Every order with a payment is one the shoppers paid, and it ended.
    assert {p.order_id for p in payments} == paid
    per_order: dict[str, list[Command]] = {}
    for command in commands:
        per_order.setdefault(command.order_id, []).append(command)
    assert all(len(found) == 1 for found in per_order.values())  # one command per order
    assert set(per_order) <= paid
    refunded: dict[str, int] = {}
    for refund in refunds:
        assert refund.order_id not in refunded, "two refunds for one order"
        refunded[refund.order_id] = refund.amount
        assert refund.status == "processed"
    for order_id in paid:
        order = orders[order_id]
        missing = order.quantity - order.dispensed
        if order.status == "dispensed":
            assert missing == 0 and order_id not in refunded
        else:
            assert refunded[order_id] == missing * order.unit_amount > 0
    # The gateway saw the same: one refund per refunded payment, for the same amounts.
    by_payment: dict[str, int] = {}
    for refund in fake.refunds:
        assert refund["payment_id"] not in by_payment, "the gateway refunded a payment twice"
        by_payment[refund["payment_id"]] = refund["amount"]
    assert sorted(by_payment.values()) == sorted(refunded.values())
    # Stock: the server's, the machines' own and the units that fell all agree.
    for mid, vm in machines.items():
        fell = sum(c.dispensed for c in commands if c.machine_id == mid)
        assert stock[mid] == STOCK - fell == vm.controller.stock, mid
        if mid != DUD:
            assert vm.motor_runs == fell, mid  # no unit run twice
        assert fell == sum(orders[c.order_id].dispensed for c in commands if c.machine_id == mid)
    assert sum(c.dispensed for c in commands if c.machine_id == DUD) == 0
