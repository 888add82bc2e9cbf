"""The Home Assistant account's rights, with a custom discovery prefix, as policy and as
Mosquitto ACL lines."""

import pytest

from broker import acl, mosquitto
from broker.passwords import hash_secret
from broker.principals import Principal

HASS = Principal("home_assistant", "hass", discovery_prefix="ha")
DEFAULT = Principal("home_assistant", "hass")


@pytest.mark.parametrize(
    ("action", "topic", "allowed"),
    [
        ("subscribe", "ha/#", True),
        ("subscribe", "ha/+/+/config", True),
        ("subscribe", "ha/+/+/+/config", True),
        ("subscribe", "ha/status", True),
        ("subscribe", "smartvend/v1/machines/+/state", True),
        ("subscribe", "smartvend/v1/machines/vm-1/today", True),
        ("subscribe", "smartvend/v1/server/status", True),
        ("subscribe", "homeassistant/#", False),  # not its prefix
        ("subscribe", "#", False),
        ("subscribe", "+/#", False),
        ("subscribe", "+/status", False),
        ("subscribe", "smartvend/v1/machines/+/status", False),
        ("subscribe", "smartvend/v1/machines/+/sales", False),
        ("subscribe", "smartvend/v1/machines/+/desired", False),
        ("subscribe", "smartvend/v1/machines/+/cmd/+", False),
        ("subscribe", "smartvend/v1/machines/+/results/+", False),
        ("subscribe", "smartvend/v1/#", False),
        ("receive", "ha/sensor/smartvend_vm-1/vends_today/config", True),
        ("receive", "ha/status", True),
        ("receive", "ha", True),
        ("receive", "ha2/status", False),
        ("receive", "smartvend/v1/machines/vm-1/state", True),
        ("receive", "smartvend/v1/machines/vm-1/today", True),
        ("receive", "smartvend/v1/machines/vm-1/cmd/c1", False),
        ("receive", "$SYS/broker/uptime", False),
        ("publish", "ha/status", True),
        ("publish", "ha/sensor/smartvend_vm-1/vends_today/config", False),
        ("publish", "homeassistant/status", False),
        ("publish", "smartvend/v1/machines/vm-1/cmd/c1", False),
        ("publish", "smartvend/v1/machines/vm-1/desired", False),
        ("publish", "smartvend/v1/machines/vm-1/status", False),
        ("publish", "smartvend/v1/server/status", False),
    ],
)
def test_home_assistant_rights(action: str, topic: str, allowed: bool) -> None:
    assert acl.allowed(HASS, action, topic) is allowed


def test_without_a_prefix_the_account_reads_home_assistants_default() -> None:
    assert acl.allowed(DEFAULT, "subscribe", "homeassistant/#")
    assert acl.allowed(DEFAULT, "publish", "homeassistant/status")
    assert not acl.allowed(DEFAULT, "subscribe", "ha/#")


def test_integrators_read_today_and_no_discovery() -> None:
    acme = Principal("integrator", "acme")
    assert acl.allowed(acme, "subscribe", "smartvend/v1/machines/+/today")
    assert not acl.allowed(acme, "subscribe", "homeassistant/#")
    assert not acl.allowed(acme, "publish", "homeassistant/status")


def test_discovery_configs_and_today_are_retained_births_are_not() -> None:
    assert acl.may_retain("ha/sensor/smartvend_vm-1/vends_today/config")
    assert acl.may_retain("homeassistant/binary_sensor/online/config")
    assert acl.may_retain("smartvend/v1/machines/vm-1/today")
    assert not acl.may_retain("ha/status")
    assert not acl.may_retain("ha/sensor/x/y/state")
    assert not acl.may_retain("smartvend/sensor/x/y/config")


def test_mosquitto_acl_block_for_home_assistant() -> None:
    accounts = [("hass", "home_assistant", hash_secret("pw")), ("acme", "integrator", "x")]
    text = mosquitto.acl_file(accounts[:1], discovery_prefix="ha")
    assert text.splitlines() == [
        "user hass",
        "topic write ha/status",
        "topic read ha/#",
        "topic read smartvend/v1/machines/+/state",
        "topic read smartvend/v1/machines/+/today",
        "topic read smartvend/v1/server/status",
    ]
    default = mosquitto.acl_file(accounts[:1])
    assert "topic read homeassistant/#" in default and "topic write homeassistant/status" in default
