"""The broker's settings: payload limit and the embedded broker's TLS listener."""

from pathlib import Path

import pytest

from api.errors import ConfigurationError
from api.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.mqtt_max_payload == 16384
    assert (settings.mqtt_tls_cert, settings.mqtt_tls_key, settings.mqtts_port) == (
        None,
        None,
        8883,
    )


def test_read_with_the_prefix() -> None:
    settings = Settings.from_env(
        {
            "SMARTVEND_MQTT_MAX_PAYLOAD": "4096",
            "SMARTVEND_MQTT_TLS_CERT": "/etc/sv/cert.pem",
            "SMARTVEND_MQTT_TLS_KEY": "/etc/sv/key.pem",
            "SMARTVEND_MQTTS_PORT": "18883",
        }
    )
    assert settings.mqtt_max_payload == 4096
    assert settings.mqtt_tls_cert == Path("/etc/sv/cert.pem")
    assert settings.mqtt_tls_key == Path("/etc/sv/key.pem")
    assert settings.mqtts_port == 18883


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SMARTVEND_MQTT_MAX_PAYLOAD": "0"}, "MQTT_MAX_PAYLOAD"),
        ({"SMARTVEND_MQTT_MAX_PAYLOAD": "lots"}, "MQTT_MAX_PAYLOAD"),
        ({"SMARTVEND_MQTT_TLS_CERT": "/c.pem"}, "MQTT_TLS_KEY"),
        ({"SMARTVEND_MQTT_TLS_KEY": "/k.pem"}, "MQTT_TLS_CERT"),
        ({"SMARTVEND_MQTTS_PORT": "70000"}, "MQTTS_PORT"),
    ],
)
def test_wrong_values_are_refused_by_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(environ)
