"""Home Assistant sees the fleet: a real broker, the bridge with its feed, and a client
that logs in with a Home Assistant account and builds the device list from discovery
the way Home Assistant does (tests/support/home_assistant.py).

On the embedded broker and on a Mosquitto configured by ``write_mosquitto_config``.
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import aiomqtt
import pytest

from api.clock import FakeClock, LocalCalendar
from api.mqtt.accounts import SERVER_USERNAME, DatabaseAuthenticator, create_integrator
from api.payments.test_gateway import TestGateway
from api.services.container import Services
from api.services.ha_feed import HomeAssistantFeed, machine_removed
from broker.passwords import hash_secret
from broker.principals import StaticAuthenticator
from schema import messages, topics
from tests.bridge.helpers import (
    WAIT,
    decoded,
    device,
    eventually,
    generated_mosquitto,
    go_online,
    machine_row,
    mqtt,
    order_status,
    pay,
    payload,
    report,
    running_bridge,
)
from tests.bridge.test_vend import register
from tests.support.brokers import running_embedded
from tests.support.home_assistant import HomeAssistantModel, parse_topic

PREFIX = "hass-test"  # not Home Assistant's default: the prefix reaches broker and server
HA_USER = "living-room"
CONFIGS_PER_MACHINE = 6  # online, stock and sold out of slot 1, sales, vends, firmware


class HomeAssistantClient:
    """Subscribes as Home Assistant does: the discovery prefix, then each entity's topics."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.model = HomeAssistantModel(PREFIX)
        self.config_messages = 0
        self.subscribed: set[str] = set()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()

    async def run(self) -> None:
        await self.client.subscribe(topics.discovery_filter(PREFIX), qos=1)
        await self.client.publish(topics.discovery_status(PREFIX), b"online", qos=1)  # birth
        async for message in self.client.messages:
            topic, data = message.topic.value, payload(message)
            if parse_topic(PREFIX, topic) is not None:
                self.config_messages += 1
                entity = self.model.discovery(topic, data)
                if entity is not None:
                    self._follow(entity.topics())
            elif not topic.startswith(PREFIX + "/"):
                self.model.message(topic, data)
            self._changed.set()

    def _follow(self, wanted: set[str]) -> None:
        new = sorted(wanted - self.subscribed)
        if new:
            self.subscribed |= set(new)
            task = asyncio.ensure_future(self.client.subscribe([(t, 1) for t in new]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def until(self, check: Callable[[HomeAssistantModel], bool], what: str) -> None:
        async with asyncio.timeout(WAIT * 2):
            while True:
                self._changed.clear()
                try:
                    if check(self.model):
                        return
                except (AssertionError, KeyError):
                    pass
                try:
                    async with asyncio.timeout(WAIT * 2):
                        await self._changed.wait()
                except TimeoutError:
                    raise AssertionError(f"Home Assistant never saw {what}") from None


@contextlib.asynccontextmanager
async def home_assistant(host: str, port: int, password: str) -> AsyncIterator[HomeAssistantClient]:
    will = aiomqtt.Will(topics.discovery_status(PREFIX), b"offline", qos=1)
    async with mqtt(host, port, HA_USER, password, will=will) as client:
        ha = HomeAssistantClient(client)
        task = asyncio.create_task(ha.run())
        try:
            yield ha
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    assert ha.model.errors == [], "a discovery config Home Assistant would refuse"


def states(model: HomeAssistantModel, mid: str) -> dict[str, str | None]:
    device = model.device("smartvend_" + mid)
    return {uid.removeprefix(f"smartvend_{mid}_"): e.state for uid, e in device.entities.items()}


def all_available(model: HomeAssistantModel, mid: str, available: bool) -> bool:
    entities = model.device("smartvend_" + mid).entities.values()
    return len(entities) == CONFIGS_PER_MACHINE and all(e.available is available for e in entities)


async def ha_sees_the_fleet(
    host: str,
    port: int,
    services: Services,
    gateway: TestGateway,
    clock: FakeClock,
    key: str,
    ha_password: str,
    server_password: str,
) -> None:
    feed = HomeAssistantFeed(services.ctx.db, clock, PREFIX, LocalCalendar("Asia/Kolkata"))
    async with home_assistant(host, port, ha_password) as ha:
        async with (
            running_bridge(
                services, host, port, server_password, feed=feed, feed_refresh_s=0.1
            ) as bridge,
            device(host, port, "vm-1", key, boot=1) as machine,
        ):
            # Discovery: the server and both machines, each machine through the server.
            await ha.until(
                lambda m: len(m.devices) == 3 and len(m.by_discovery_id) == 1 + 2 * 6,
                "the server and two machines",
            )
            assert ha.model.device("smartvend_server").info["name"] == "SmartVend server"
            lobby = ha.model.device("smartvend_vm-1")
            assert lobby.info["name"] == "Lobby" and lobby.info["via_device"] == "smartvend_server"
            await ha.until(lambda m: all_available(m, "vm-1", True), "vm-1 available")
            first = {
                "online": "off",
                "slot_1_stock": "5",
                "slot_1_sold_out": "off",
                "sales_today": "0.0",
                "vends_today": "0",
                "firmware": None,  # unknown until the machine reports one
            }
            await ha.until(lambda m: states(m, "vm-1") == first, "vm-1's first states")
            assert ha.model.entity("smartvend_server_status").state == "on"

            # The machine comes online with its firmware: the device gets its sw_version.
            await machine.subscribe(
                [(topics.desired("vm-1"), 1), (topics.machine_filter("cmd", "vm-1"), 1)]
            )
            await go_online(machine, "vm-1", 1, clock.now())
            await ha.until(
                lambda m: (
                    states(m, "vm-1")["online"] == "on"
                    and states(m, "vm-1")["firmware"] == "1.0.0"
                    and m.device("smartvend_vm-1").info.get("sw_version") == "1.0.0"
                ),
                "vm-1 online with firmware 1.0.0",
            )

            # A sale of two units: sales and vends today, stock.
            code = (await machine_row(services, "vm-1")).display_code
            assert code is not None
            commands = asyncio.Queue[aiomqtt.Message]()

            async def commands_in() -> None:
                async for message in machine.messages:
                    if message.topic.value.startswith(topics.cmd("vm-1", "x")[:-1]) and payload(
                        message
                    ):
                        await commands.put(message)

            reader = asyncio.create_task(commands_in())
            try:
                order_id = await pay(services, gateway, code, quantity=2)
                bridge.kick()
                async with asyncio.timeout(WAIT):
                    cmd = decoded("cmd", await commands.get())
            finally:
                reader.cancel()
            await report(machine, "vm-1", cmd["cmd_id"], "accepted", 0, clock.now())
            await report(machine, "vm-1", cmd["cmd_id"], "succeeded", 2, clock.now())

            async def dispensed() -> bool:
                return await order_status(services, order_id) == "dispensed"

            await eventually(dispensed, "the order to be dispensed")
            await ha.until(
                lambda m: (
                    states(m, "vm-1")["sales_today"] == "50.0"
                    and states(m, "vm-1")["vends_today"] == "2"
                    and states(m, "vm-1")["slot_1_stock"] == "3"
                ),
                "two vends worth 50 INR and 3 left",
            )
            sales = ha.model.entity("smartvend_vm-1_sales_today")
            assert sales.config["unit_of_measurement"] == "INR"
            assert sales.last_reset is not None and sales.last_reset.endswith("T18:30:00+00:00")

            # Sold out.
            await services.machines.set_stock("vm-1", 0)
            await ha.until(
                lambda m: (
                    states(m, "vm-1")["slot_1_sold_out"] == "on"
                    and states(m, "vm-1")["slot_1_stock"] == "0"
                ),
                "slot 1 sold out",
            )

            # Home Assistant restarts: its birth makes the server publish discovery again.
            before = ha.config_messages
            await ha.client.publish(topics.discovery_status(PREFIX), b"online", qos=1)
            await ha.until(
                lambda _m: ha.config_messages >= before + 1 + 2 * CONFIGS_PER_MACHINE,
                "discovery published again after its birth",
            )

            # Decommissioning vm-2 clears its configs: Home Assistant drops the device.
            async with services.ctx.db.begin() as s:
                await machine_removed(s, "vm-2", ["1"], clock.now(), prefix=PREFIX)
            bridge.kick()
            await ha.until(
                lambda m: ("smartvend_vm-2",) not in m.devices and len(m.devices) == 2,
                "vm-2 removed",
            )
            assert ha.model.retained[topics.today("vm-2")] == b""

        # The server went away: every machine entity is unavailable, the server is off.
        await ha.until(lambda m: all_available(m, "vm-1", False), "vm-1 unavailable")
        assert ha.model.entity("smartvend_server_status").state == "off"

    # A Home Assistant that starts now finds the retained configs and state at once.
    async with home_assistant(host, port, ha_password) as late:
        await late.until(
            lambda m: len(m.devices) == 2 and states(m, "vm-1")["vends_today"] == "2",
            "the retained fleet",
        )
        assert ("smartvend_vm-2",) not in late.model.devices


async def prepare(services: Services, clock: FakeClock) -> tuple[str, str]:
    key = await register(services, "vm-1")
    await register(services, "vm-2")
    _, password = await create_integrator(services.ctx.db, clock, HA_USER, home_assistant=True)
    return key, password


async def test_home_assistant_on_the_embedded_broker(
    services: Services, gateway: TestGateway, clock: FakeClock, server_password: str
) -> None:
    key, password = await prepare(services, clock)
    authenticator = DatabaseAuthenticator(
        services.ctx.db, SERVER_USERNAME, hash_secret(server_password), discovery_prefix=PREFIX
    )
    async with running_embedded(authenticator) as broker:
        await ha_sees_the_fleet(
            broker.host, broker.port, services, gateway, clock, key, password, server_password
        )


@pytest.mark.mosquitto
async def test_home_assistant_on_mosquitto_with_generated_config(
    services: Services, gateway: TestGateway, clock: FakeClock, server_password: str
) -> None:
    key, password = await prepare(services, clock)
    async with generated_mosquitto(services, server_password, PREFIX) as (host, port, paths):
        assert f"topic read {PREFIX}/#" in paths[1].read_text()
        await ha_sees_the_fleet(
            host, port, services, gateway, clock, key, password, server_password
        )


async def test_the_home_assistant_account_reads_but_never_commands(
    services: Services, clock: FakeClock, server_password: str
) -> None:
    key, password = await prepare(services, clock)
    authenticator = DatabaseAuthenticator(
        services.ctx.db, SERVER_USERNAME, hash_secret(server_password), discovery_prefix=PREFIX
    )
    principal = await authenticator.authenticate(HA_USER, password, "any-client-id")
    assert principal is not None and principal.role == "home_assistant"
    assert principal.discovery_prefix == PREFIX
    async with (
        running_embedded(authenticator) as broker,
        device(broker.host, broker.port, "vm-1", key, boot=1) as machine,
        mqtt(broker.host, broker.port, HA_USER, password) as ha,
    ):
        await machine.subscribe(
            [(topics.desired("vm-1"), 1), (topics.machine_filter("cmd", "vm-1"), 1)]
        )
        refused = await ha.subscribe(
            [(topics.machine_filter("cmd"), 1), (topics.machine_filter("desired"), 1)]
        )
        assert [getattr(code, "value", code) for code in refused] == [0x80, 0x80]
        command = {
            "cmd_id": "c-1",
            "action": "dispense",
            "quantity": 1,
            "order": "o-1",
            "issued_at": clock.now(),
            "expires_at": clock.now() + 60,
        }
        await ha.publish(topics.cmd("vm-1", "c-1"), messages.encode("cmd", command), qos=1)
        # What reaches the machine next is the server's status: the command never did.
        await ha.publish(topics.discovery_status(PREFIX), b"online", qos=1)
        await machine.subscribe(topics.SERVER_STATUS, qos=1)
        async with mqtt(broker.host, broker.port, SERVER_USERNAME, server_password) as server:
            await server.publish(topics.SERVER_STATUS, messages.server_online(clock.now()), qos=1)
        async with asyncio.timeout(WAIT):
            async for message in machine.messages:
                assert message.topic.value == topics.SERVER_STATUS, message.topic.value
                break


async def test_a_home_assistant_will_elsewhere_is_refused(
    services: Services, clock: FakeClock, server_password: str
) -> None:
    _key, password = await prepare(services, clock)
    authenticator = DatabaseAuthenticator(
        services.ctx.db, SERVER_USERNAME, hash_secret(server_password), discovery_prefix=PREFIX
    )
    async with running_embedded(authenticator) as broker:
        for will_topic in (topics.cmd("vm-1", "c-1"), "homeassistant/status"):
            will = aiomqtt.Will(will_topic, b"offline", qos=1)
            with pytest.raises(aiomqtt.MqttError):
                async with mqtt(broker.host, broker.port, HA_USER, password, will=will):
                    pass
        will = aiomqtt.Will(topics.discovery_status(PREFIX), b"offline", qos=1)
        async with mqtt(broker.host, broker.port, HA_USER, password, will=will):
            pass


class CountingFeed(HomeAssistantFeed):
    """The real feed, counting how often a bridge read it whole or refreshed it."""

    snapshots = 0
    refreshes = 0

    async def snapshot(self) -> list[tuple[str, bytes]]:
        self.snapshots += 1
        return await super().snapshot()

    async def refresh(self) -> int:
        self.refreshes += 1
        return await super().refresh()


async def test_only_the_leader_publishes_the_feed(services: Services, clock: FakeClock) -> None:
    """Two workers' bridges (two server accounts): Home Assistant's birth reaches both,
    the leader answers; the other does once it leads."""
    await prepare(services, clock)
    keys = {name: secrets.token_urlsafe(16) for name in ("srv-a", "srv-b", "hass")}
    roles = {"srv-a": "server", "srv-b": "server", "hass": "home_assistant"}
    authenticator = StaticAuthenticator(
        {name: (roles[name], hash_secret(key)) for name, key in keys.items()}
    )
    leading = {"srv-a": True, "srv-b": False}
    feeds = {
        name: CountingFeed(services.ctx.db, clock, "homeassistant", LocalCalendar("Asia/Kolkata"))
        for name in leading
    }
    async with running_embedded(authenticator) as broker:
        host, port = broker.host, broker.port
        async with (
            running_bridge(
                services, host, port, keys["srv-a"], username="srv-a", client_id="srv-a",
                feed=feeds["srv-a"], feed_refresh_s=0.1, leads=lambda: leading["srv-a"],
            ) as leader,
            running_bridge(
                services, host, port, keys["srv-b"], username="srv-b", client_id="srv-b",
                feed=feeds["srv-b"], feed_refresh_s=0.1, leads=lambda: leading["srv-b"],
            ) as follower,
            mqtt(host, port, "hass", keys["hass"]) as hass,
        ):  # fmt: skip
            assert feeds["srv-a"].snapshots == 1 and feeds["srv-b"].snapshots == 0
            configs = asyncio.Queue[str]()

            async def collect() -> None:
                async for message in hass.messages:
                    if payload(message):
                        await configs.put(message.topic.value)

            reader = asyncio.create_task(collect())
            try:
                await hass.subscribe("homeassistant/+/+/+/config", qos=1)
                async with asyncio.timeout(WAIT):  # the retained configs
                    for _ in range(1 + 2 * CONFIGS_PER_MACHINE):
                        await configs.get()
                await hass.publish("homeassistant/status", b"online", qos=1)

                async def both_heard() -> bool:
                    # The follower notes the birth (for when it leads) and does nothing else.
                    return feeds["srv-a"].snapshots == 2 and follower._feed_due

                await eventually(both_heard, "both bridges to hear Home Assistant's birth")
                async with asyncio.timeout(WAIT):  # the leader's answer
                    for _ in range(1 + 2 * CONFIGS_PER_MACHINE):
                        await configs.get()
                for bridge in (follower, follower, leader):
                    async with asyncio.timeout(WAIT):
                        await bridge.wait_drained()
                assert feeds["srv-b"].snapshots == 0 and feeds["srv-b"].refreshes == 0
                assert configs.empty()

                leading.update({"srv-a": False, "srv-b": True})  # leadership moves
                follower.kick()
                async with asyncio.timeout(WAIT):
                    for _ in range(1 + 2 * CONFIGS_PER_MACHINE):
                        await configs.get()
                assert feeds["srv-b"].snapshots == 1
            finally:
                reader.cancel()
