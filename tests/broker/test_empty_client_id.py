"""[MQTT-3.1.3-6..8] an empty client id, on the embedded broker and Mosquitto alike.

An integrator (or the server) may connect with an empty client id and clean
session 1: the broker assigns one and serves it. Clean session 0 with an empty id
gets CONNACK 2 (``test_conformance_sessions``). A machine's client id stays its id.
"""

import asyncio
import shutil

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client
from tests.broker.raw import CONNACK, PUBLISH, RawClient

QUIET = 0.5


async def integrator(broker: BrokerUnderTest, username: str = "acme") -> RawClient:
    raw = await RawClient.open(broker.host, broker.port)
    connack = await raw.connect("", username, broker.keys[username], clean=True)
    assert (connack.kind, connack.body) == (CONNACK, b"\x00\x00"), connack
    return raw


async def test_empty_client_id_with_clean_session_is_served(mqtt_broker: BrokerUnderTest) -> None:
    raw = await integrator(mqtt_broker)
    assert await raw.subscribe(topics.machine_filter("status", "+"), 1) == b"\x01"
    async with client(mqtt_broker, "A") as a:
        await a.publish(topics.status("A"), b'{"state":"online","boot":1}', qos=1)
    got = await raw.read()
    assert got.kind == PUBLISH and got.publish()[0] == topics.status("A")
    await raw.disconnect()


async def test_server_account_with_empty_client_id_is_served(mqtt_broker: BrokerUnderTest) -> None:
    raw = await integrator(mqtt_broker, "srv")
    await raw.publish(topics.SERVER_STATUS, b'{"state":"online","ts":1}', qos=0)
    assert await raw.nothing_within(QUIET)  # still connected, nothing refused
    await raw.disconnect()


async def test_two_assigned_ids_do_not_take_over_each_other(
    mqtt_broker: BrokerUnderTest,
) -> None:
    if mqtt_broker.kind == "mosquitto":
        # The machines' listener forces client id = username (use_username_as_clientid):
        # there the second connection of one account takes the first one over.
        return
    first = await integrator(mqtt_broker)
    second = await integrator(mqtt_broker)
    for raw in (first, second):
        assert await raw.subscribe(topics.machine_filter("status", "+"), 1) == b"\x01"
    assert mqtt_broker.embedded is not None
    assigned = [c for c in mqtt_broker.embedded.connected_clients() if c.startswith("auto-")]
    assert len(assigned) == 2
    async with client(mqtt_broker, "B") as b:
        await b.publish(topics.status("B"), b'{"state":"online","boot":1}', qos=1)
    for raw in (first, second):
        got = await raw.read()
        assert got.kind == PUBLISH and got.publish()[0] == topics.status("B")
    # revoking the account closes the connections it holds under assigned ids
    await mqtt_broker.revoke("acme")
    assert await mqtt_broker.embedded.disconnect("acme")
    assert await first.closed_by_peer(5.0) and await second.closed_by_peer(5.0)
    first.close()
    second.close()


async def test_machine_keeps_its_own_client_id(mqtt_broker: BrokerUnderTest) -> None:
    raw = await RawClient.open(mqtt_broker.host, mqtt_broker.port)
    connack = await raw.connect("", "A", mqtt_broker.keys["A"], clean=True)
    if mqtt_broker.kind == "embedded":
        assert (connack.kind, connack.body[1]) == (CONNACK, 5)  # a machine names itself
    else:
        assert (connack.kind, connack.body[1]) == (CONNACK, 0)  # Mosquitto makes it "A"
        await raw.subscribe(topics.machine_filter("desired", "A"), 1)
        async with client(mqtt_broker, "watch") as watch:
            await watch.publish(topics.desired("A"), b"for-A", qos=1)
        got = await raw.read()
        assert got.kind == PUBLISH and got.publish()[2] == b"for-A"
    raw.close()


async def test_mosquitto_sub_reads_what_an_integrator_may(mqtt_broker: BrokerUnderTest) -> None:
    """The stock command-line client (it picks its own id) as an integrator."""
    tool = shutil.which("mosquitto_sub")
    assert tool is not None, "mosquitto_sub is missing (apt-get install mosquitto-clients)"
    sub = await asyncio.create_subprocess_exec(
        tool,
        *("-V", "mqttv311", "-h", mqtt_broker.host, "-p", str(mqtt_broker.port)),
        *("-u", "acme", "-P", mqtt_broker.keys["acme"], "-q", "1", "-C", "1", "-W", "20"),
        *("-t", topics.machine_filter("status", "+")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with client(mqtt_broker, "A") as a:
            for _ in range(100):  # until the subscription is in place
                await a.publish(topics.status("A"), b'{"state":"online","boot":7}', qos=1)
                try:
                    async with asyncio.timeout(0.2):
                        await sub.wait()
                    break
                except TimeoutError:
                    continue
        out, err = await sub.communicate()
    finally:
        if sub.returncode is None:
            sub.kill()
            await sub.wait()
    assert sub.returncode == 0, err
    assert b'"boot":7' in out
