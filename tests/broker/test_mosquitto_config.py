"""Generation of Mosquitto's password file, ACL file and mosquitto.conf."""

import pytest

from broker.mosquitto import acl_file, mosquitto_conf, password_file
from broker.passwords import hash_secret

STORED = hash_secret("k")
ACCOUNTS = [("A", "machine", STORED), ("acme", "integrator", STORED), ("srv", "server", STORED)]


def blocks(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("user "):
            current = found.setdefault(line.removeprefix("user "), [])
        elif line.strip():
            current.append(line)
    return found


def test_password_file_lines() -> None:
    assert password_file(ACCOUNTS) == "".join(f"{u}:{STORED}\n" for u, _, _ in ACCOUNTS)


def test_acl_blocks_per_account() -> None:
    got = blocks(acl_file(ACCOUNTS))
    assert got["A"] == [
        "topic write smartvend/v1/machines/A/status",
        "topic write smartvend/v1/machines/A/reported",
        "topic write smartvend/v1/machines/A/telemetry",
        "topic write smartvend/v1/machines/A/events",
        "topic write smartvend/v1/machines/A/results/+",
        "topic read smartvend/v1/machines/A/desired",
        "topic read smartvend/v1/machines/A/cmd/+",
        "topic read smartvend/v1/server/status",
    ]
    assert all(line.startswith("topic read ") for line in got["acme"])
    assert "topic read smartvend/v1/machines/+/state" in got["acme"]
    assert not any("desired" in line or "cmd" in line or "results" in line for line in got["acme"])
    assert got["srv"] == ["topic readwrite #", "topic read $SYS/#"]
    assert "pattern" not in acl_file(ACCOUNTS)


@pytest.mark.parametrize(
    "account",
    [
        ("a:b", "machine", STORED),
        ("", "server", STORED),
        ("x y", "integrator", STORED),
        ("A", "admin", STORED),
        ("has.dot", "machine", STORED),
    ],
)
def test_unusable_accounts_are_rejected(account: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError):
        acl_file([account])
    with pytest.raises(ValueError):
        password_file([account])


def test_password_file_needs_mosquitto_hashes() -> None:
    with pytest.raises(ValueError):
        password_file([("A", "machine", "$argon2id$v=19$...")])


def test_conf() -> None:
    conf = mosquitto_conf(
        port=18830,
        host="127.0.0.1",
        password_file="/p/pw",
        acl_file="/p/acl",
        persistence_dir="/var/x",
    )
    lines = conf.splitlines()
    listener = lines.index("listener 18830 127.0.0.1")
    assert lines.index("per_listener_settings true") < listener
    for setting in (
        "allow_anonymous false",
        "use_username_as_clientid true",
        "password_file /p/pw",
        "acl_file /p/acl",
    ):
        assert lines.index(setting) > listener
    assert "set_tcp_nodelay true" in lines
    assert "max_queued_messages 100000" in lines  # a burst to the server is not dropped
    assert "persistence true" in lines and "persistence_location /var/x/" in lines
    no_persistence = mosquitto_conf(
        port=1, host="::1", password_file="/p", acl_file="/a", persistence_dir=None
    )
    assert "persistence false" in no_persistence.splitlines()
    with pytest.raises(ValueError):
        mosquitto_conf(port=0, host="h", password_file="/p", acl_file="/a", persistence_dir=None)
    with pytest.raises(ValueError):
        mosquitto_conf(
            port=1, host="h\nuser root", password_file="/p", acl_file="/a", persistence_dir=None
        )


def test_conf_limits_the_payload_as_the_embedded_broker_does() -> None:
    args = {"port": 1, "host": "h", "password_file": "/p", "acl_file": "/a"}
    default = mosquitto_conf(**args, persistence_dir=None).splitlines()
    assert "message_size_limit 16384" in default
    small = mosquitto_conf(**args, persistence_dir=None, max_payload=512).splitlines()
    assert "message_size_limit 512" in small
    with pytest.raises(ValueError):
        mosquitto_conf(**args, persistence_dir=None, max_payload=0)
