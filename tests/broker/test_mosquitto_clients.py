"""Clients nobody here wrote: Debian's ``mosquitto_sub`` and ``mosquitto_pub`` against
both brokers (sessions, MQTT 5, retained status, wills and the access rules)."""

import asyncio
import os
import shutil
import signal
from dataclasses import dataclass

from schema import topics
from tests.broker.mqtt_client import BrokerUnderTest, client, messages_until

RUN_LIMIT = 20.0


def binary(name: str) -> str:
    """The client's path; fails loudly (never skips) when mosquitto-clients is missing."""
    found = shutil.which(name)
    if found is None:
        where = "in CI" if os.environ.get("CI") == "true" else "on this machine"
        raise RuntimeError(
            f"{name} is missing {where}: install Debian's mosquitto-clients "
            "(make system-deps does); these tests run real clients and are never skipped"
        )
    return found


@dataclass
class Ran:
    code: int
    out: str
    err: str


def login(broker: BrokerUnderTest, user: str) -> list[str]:
    """Address and credentials; the client id is the username (required of machines)."""
    return ["-h", broker.host, "-p", str(broker.port), "-u", user, "-P", broker.keys[user],
            "-i", user]  # fmt: skip


async def until_subscribed(proc: asyncio.subprocess.Process) -> None:
    """Read the debug output of ``mosquitto_sub -d`` (line-buffered) up to its SUBACK."""
    assert proc.stdout is not None
    while b"SUBACK" not in await asyncio.wait_for(proc.stdout.readline(), 10):
        pass


async def start_sub(*args: str) -> asyncio.subprocess.Process:
    """A long-running ``mosquitto_sub -d`` whose output is line-buffered."""
    return await asyncio.create_subprocess_exec(
        binary("stdbuf"),
        "-oL",
        binary("mosquitto_sub"),
        *args,
        "-d",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def run(tool: str, *args: str, limit: float = RUN_LIMIT) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        binary(tool),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    return Ran(proc.returncode or 0, out.decode(), err.decode())


async def sub(broker: BrokerUnderTest, user: str, *args: str) -> Ran:
    return await run("mosquitto_sub", *login(broker, user), "-V", "mqttv311", *args)


async def pub(broker: BrokerUnderTest, user: str, *args: str) -> Ran:
    ran = await run("mosquitto_pub", *login(broker, user), "-V", "mqttv311", *args)
    assert ran.code == 0, ran
    return ran


CMD_B = topics.machine_filter("cmd", "B")


async def persistent_b(broker: BrokerUnderTest, *extra: str) -> Ran:
    return await sub(broker, "B", "-c", "-q", "1", "-t", CMD_B, "-v", *extra)


async def test_queued_command_reaches_a_persistent_sub_that_hides_stale_messages(
    mqtt_broker: BrokerUnderTest,
) -> None:
    """Issues 13.1 and 13.4: queued while away, delivered on return with RETAIN=0, so
    ``-R`` (hide retained messages) still prints it."""
    assert (await persistent_b(mqtt_broker, "-E")).code == 0
    await pub(mqtt_broker, "srv", "-t", topics.cmd("B", "k1"), "-q", "1", "-r", "-m", "queued")
    got = await persistent_b(mqtt_broker, "-R", "-C", "1", "-W", "10")
    assert got.out.split() == [topics.cmd("B", "k1"), "queued"], got


async def test_unacknowledged_command_is_resent_to_a_real_client(
    mqtt_broker: BrokerUnderTest,
) -> None:
    """Issue 13.1: a client frozen before its PUBACK and killed gets the message again."""
    proc = await start_sub(*login(mqtt_broker, "B"), "-V", "mqttv311", "-c", "-q", "1", "-t", CMD_B)
    try:
        await until_subscribed(proc)
        proc.send_signal(signal.SIGSTOP)  # it can no longer acknowledge anything
        async with client(mqtt_broker, "srv") as srv:
            await srv.publish(topics.cmd("B", "k2"), b"in-flight", qos=1)
    finally:
        proc.kill()
        await proc.wait()
    got = await persistent_b(mqtt_broker, "-C", "1", "-W", "10")
    assert got.out.split() == [topics.cmd("B", "k2"), "in-flight"], got


async def test_persistent_session_right_after_a_clean_one(mqtt_broker: BrokerUnderTest) -> None:
    """Issue 13.3."""
    assert (await sub(mqtt_broker, "B", "-t", CMD_B, "-E")).code == 0
    assert (await persistent_b(mqtt_broker, "-E")).code == 0
    await pub(mqtt_broker, "srv", "-t", topics.cmd("B", "k3"), "-q", "1", "-m", "kept")
    await asyncio.sleep(1.5)  # past amqtt's once-a-second sweep of ended sessions
    got = await persistent_b(mqtt_broker, "-C", "1", "-W", "10")
    assert got.out.split() == [topics.cmd("B", "k3"), "kept"], got


async def test_mqtt5_client(mqtt_broker: BrokerUnderTest) -> None:
    """Issue 13.2: the embedded broker refuses MQTT 5 at once; Mosquitto speaks it."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    ran = await run(
        "mosquitto_pub",
        *login(mqtt_broker, "A"),
        *("-V", "mqttv5", "-t", topics.telemetry("A"), "-m", "{}"),
        *("-D", "connect", "session-expiry-interval", "60"),
    )
    if mqtt_broker.kind == "embedded":
        assert ran.code != 0
        assert "protocol version" in (ran.err + ran.out).lower(), ran
        assert loop.time() - started < 3.0
    else:
        assert ran.code == 0, ran


async def test_retained_status_and_will(mqtt_broker: BrokerUnderTest) -> None:
    online = '{"state":"online","boot":4,"fw":"1.0.0","ts":1}'
    lost = '{"state":"lost","boot":4}'
    await pub(mqtt_broker, "A", "-t", topics.status("A"), "-q", "1", "-r", "-m", online)
    kept = await sub(
        mqtt_broker, "acme", "-t", topics.status("A"), "--retained-only", "-C", "1", "-W", "5"
    )
    assert kept.out.strip() == online, kept
    holder = await start_sub(
        *login(mqtt_broker, "A"),
        *("-V", "mqttv311", "-t", topics.desired("A"), "-k", "30"),
        *("--will-topic", topics.status("A"), "--will-payload", lost),
        *("--will-qos", "1", "--will-retain"),
    )
    try:
        await until_subscribed(holder)
        async with client(mqtt_broker, "acme") as acme:
            await acme.subscribe(topics.status("A"), qos=1)
            first = await asyncio.wait_for(anext(aiter(acme.messages)), 10)
            assert first.payload == online.encode()
            holder.kill()  # no DISCONNECT: the broker publishes the will
            will = await asyncio.wait_for(anext(aiter(acme.messages)), 10)
            assert (will.payload, will.retain) == (lost.encode(), False)
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()
    kept = await sub(
        mqtt_broker, "acme", "-t", topics.status("A"), "--retained-only", "-C", "1", "-W", "5"
    )
    assert kept.out.strip() == lost, kept


async def test_access_rules(mqtt_broker: BrokerUnderTest) -> None:
    anonymous = await run(
        "mosquitto_sub", "-h", mqtt_broker.host, "-p", str(mqtt_broker.port), "-t", "#", "-E"
    )
    assert anonymous.code != 0 and "not authori" in anonymous.err.lower(), anonymous
    wrong = await run(
        "mosquitto_sub",
        *("-h", mqtt_broker.host, "-p", str(mqtt_broker.port), "-u", "A", "-P", "nope"),
        *("-t", topics.desired("A"), "-E"),
    )
    assert wrong.code != 0, wrong
    # A machine may not read another machine's topics, nor an integrator commands: the
    # embedded broker refuses the subscription, Mosquitto grants it and delivers nothing.
    await pub(mqtt_broker, "srv", "-t", topics.desired("B"), "-q", "1", "-r", "-m", "for-B")
    await pub(mqtt_broker, "srv", "-t", topics.cmd("A", "x"), "-q", "1", "-r", "-m", "for-A")
    for user, forbidden in (("A", topics.desired("B")), ("acme", topics.machine_filter("cmd"))):
        got = await sub(mqtt_broker, user, "-t", forbidden, "-C", "1", "-W", "2")
        assert got.out == "", (user, got)
        if mqtt_broker.kind == "embedded":
            assert "denied" in got.err.lower(), (user, got)
    # Publishing elsewhere is dropped: the server never sees A's publish on B's status.
    async with client(mqtt_broker, "watch") as watch:
        await watch.subscribe(topics.status("B"), qos=1)
        await pub(mqtt_broker, "A", "-t", topics.status("B"), "-q", "1", "-m", "forged")
        await pub(mqtt_broker, "B", "-t", topics.status("B"), "-q", "1", "-m", "genuine")
        assert await messages_until(watch, b"genuine") == []
