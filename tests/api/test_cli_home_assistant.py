"""``smartvend integrator add --home-assistant`` and ``smartvend mosquitto-config`` with
``SMARTVEND_HA_DISCOVERY_PREFIX``, run as the installed console script; the settings."""

import re
from pathlib import Path

import pytest

from api.errors import ConfigurationError
from api.settings import Settings
from tests.api.test_cli import Cli, cli  # noqa: F401 - the fixture
from tests.support.databases import migrate

PASSWORD_LINE = re.compile(r"password \(shown once\): (\S+)")


def acl_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        blocks[lines[0].removeprefix("user ")] = lines[1:]
    return blocks


def test_home_assistant_account_and_its_mosquitto_acl(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    migrate(cli.url)
    added = cli("integrator", "add", "hass", "--home-assistant")
    assert added.returncode == 0, added.stderr
    assert "Home Assistant account hass created" in added.stdout
    assert PASSWORD_LINE.search(added.stdout)
    plain = cli("integrator", "add", "reports")
    assert plain.returncode == 0, plain.stderr

    cli.env["SMARTVEND_HA_DISCOVERY_PREFIX"] = "ha"
    out = tmp_path / "mosq"
    written = cli("mosquitto-config", "--out", str(out), "--port", "18830")
    assert written.returncode == 0, written.stderr
    blocks = acl_blocks((out / "acl").read_text())
    assert blocks["hass"] == [
        "topic write ha/status",
        "topic read ha/#",
        "topic read smartvend/v1/machines/+/state",
        "topic read smartvend/v1/machines/+/today",
        "topic read smartvend/v1/server/status",
    ]
    assert not any(line.startswith("topic write") for line in blocks["reports"])
    assert not any("ha/" in line for line in blocks["reports"])
    assert "hass:$7$" in (out / "passwd").read_text()

    refused = cli("integrator", "add", "sneaky", "--description", "[home-assistant] me too")
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SMARTVEND_HA_DISCOVERY_PREFIX": "home/assistant"}, "HA_DISCOVERY_PREFIX"),
        ({"SMARTVEND_HA_DISCOVERY_PREFIX": "smartvend"}, "HA_DISCOVERY_PREFIX"),
        ({"SMARTVEND_HA_DISCOVERY_PREFIX": "ha#"}, "HA_DISCOVERY_PREFIX"),
        ({"SMARTVEND_TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
    ],
)
def test_bad_home_assistant_settings_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        Settings.from_env(env)


def test_home_assistant_settings() -> None:
    default = Settings.from_env({})
    assert default.ha_discovery_prefix is None and default.timezone == "Asia/Kolkata"
    chosen = Settings.from_env(
        {"SMARTVEND_HA_DISCOVERY_PREFIX": "homeassistant", "SMARTVEND_TIMEZONE": "Europe/Paris"}
    )
    assert chosen.ha_discovery_prefix == "homeassistant" and chosen.timezone == "Europe/Paris"
    assert Settings.from_env({"SMARTVEND_HA_DISCOVERY_PREFIX": ""}).ha_discovery_prefix is None
