"""Secrets in Mosquitto's $7$ format, checked against the real mosquitto tools."""

import shutil
import subprocess
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.passwords import hash_secret, is_hash, verify_secret
from schema import topics
from tests.broker.mqtt_client import NODELAY
from tests.support.brokers import mosquitto_broker


def mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(found).exists():
        pytest.fail("mosquitto_passwd is missing: apt-get install mosquitto (tests never skip)")
    return found


def test_round_trip_and_format() -> None:
    stored = hash_secret("k3y-123")
    assert stored.startswith("$7$101$")
    _, _, iterations, salt, digest = stored.split("$")
    assert (iterations, len(salt), len(digest)) == ("101", 16, 88)  # 12 and 64 bytes, base64
    assert verify_secret("k3y-123", stored)
    assert not verify_secret("k3y-124", stored)
    assert not verify_secret("", stored)
    assert hash_secret("k3y-123") != stored  # fresh salt each time


def test_iterations_are_recorded() -> None:
    stored = hash_secret("abc", iterations=1000)
    assert stored.startswith("$7$1000$")
    assert verify_secret("abc", stored)
    with pytest.raises(ValueError):
        hash_secret("abc", iterations=0)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "$6$abc$def",
        "$7$",
        "$7$101$$",
        "$7$x$AAAA$AAAA",
        "$7$0$AAAAAAAAAAAAAAAA$" + "A" * 88,
        "$7$101$not base64!$" + "A" * 88,
        "$7$101$AAAAAAAAAAAAAAAA$AAAA",
        "$7$99999999999$AAAAAAAAAAAAAAAA$" + "A" * 88,
        "$7$101$AAAAAAAAAAAAAAAA$" + "A" * 88 + "$extra",
    ],
)
def test_malformed_hashes_never_verify(stored: str) -> None:
    assert not verify_secret("anything", stored)
    assert not is_hash(stored)


@given(secret=st.text(), stored=st.text())
def test_verify_never_raises(secret: str, stored: str) -> None:
    assert verify_secret(secret, stored) in (True, False)


def test_non_strings_do_not_verify() -> None:
    assert not verify_secret(None, hash_secret("x"))  # type: ignore[arg-type]
    assert not verify_secret("x", None)  # type: ignore[arg-type]
    assert not verify_secret("\ud800", hash_secret("x"))


def test_verifies_a_hash_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    password_file = tmp_path / "passwd"
    subprocess.run(
        [mosquitto_passwd(), "-c", "-b", str(password_file), "machine-7", "Zq8-secret"],
        check=True,
        capture_output=True,
    )
    username, stored = password_file.read_text().strip().split(":", 1)
    assert username == "machine-7"
    assert is_hash(stored)
    assert verify_secret("Zq8-secret", stored)
    assert not verify_secret("Zq8-secreT", stored)


async def test_mosquitto_accepts_our_hashes() -> None:
    accounts = [
        ("M1", "machine", hash_secret("key-one")),
        ("M2", "machine", hash_secret("key-two", iterations=20_000)),
    ]
    async with mosquitto_broker(accounts) as (host, port):
        for username, key in (("M1", "key-one"), ("M2", "key-two")):
            async with aiomqtt.Client(
                host,
                port,
                username=username,
                password=key,
                identifier=username,
                socket_options=NODELAY,
            ) as mqtt:
                await mqtt.publish(topics.telemetry(username), b"{}", qos=1)
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                host, port, username="M1", password="key-two", socket_options=NODELAY
            ):
                pass
