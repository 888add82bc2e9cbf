"""A machine's downloaded config takes firmware updates from this server."""

from pathlib import Path

from starlette.requests import Request

from api.firmware import cli as fw_cli
from device import ota
from tests.support.stack import test_settings as settings_for
from web.admin.device_config import firmware_config


def _request(host: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "server": (host, 443),
            "path": "/admin/machines",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
        }
    )


def test_the_config_names_this_server_and_its_release_keys(tmp_path: Path) -> None:
    keys = [fw_cli.keygen(tmp_path / "a.key"), fw_cli.keygen(tmp_path / "b.key")]
    settings = settings_for(tmp_path, firmware_public_keys=",".join(keys))
    config = firmware_config(settings, _request("vend.example.com"), "VM-1", "k", motors=2)
    assert config["firmware_keys"] == keys
    assert config["http_url"] == "https://vend.example.com"
    assert config["trial_s"] == 120
    # The firmware resolves an update command's manifest path against it.
    assert ota.http_url(config) == "https://vend.example.com"
