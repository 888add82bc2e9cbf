"""What a new machine needs: its firmware config file and the QR code shoppers scan."""

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import segno
from markupsafe import Markup
from starlette.requests import Request

from api.settings import Settings

# The same shape as device/firmware/config.example.json; site-specific values
# (Wi-Fi, pins) keep the example's placeholders for the installer to edit.
HARDWARE_DEFAULTS: dict[str, Any] = {
    "trial_s": 120,  # a new firmware version's time to reach the server, or roll back
    "ntp_host": "pool.ntp.org",
    "pins": {
        "ena": 25,
        "in1": 26,
        "in2": 27,
        "i2c_id": 0,
        "sda": 21,
        "scl": 22,
        "drop": 32,
        "door": 33,
    },
    "lcd_addr": 39,
    "motor_ms": 800,
    "motor_duty": 100,
    "motor_pwm_hz": 1000,
    "drop_sensor": True,
    "settle_ms": 600,
    "max_quantity": 10,
    "telemetry_s": 60,
    "watchdog_ms": 30000,
}


# One H-bridge channel per motor, as the example wires six (docs/firmware.md, "Several
# motors"); a machine's config lists as many as its planogram's motors.
MOTOR_PINS: list[dict[str, int]] = [
    {"ena": 25, "in1": 26, "in2": 27},
    {"in1": 4},
    {"in1": 13},
    {"in1": 16},
    {"in1": 17},
    {"in1": 18},
]


def motor_pins(count: int) -> list[dict[str, int]]:
    """The first ``count`` motors' pins, up to the example's six (more are wired by hand)."""
    return MOTOR_PINS[: max(1, min(count, len(MOTOR_PINS)))]


def mqtt_endpoint(settings: Settings, request: Request) -> tuple[str, int, bool]:
    """(host, port, tls) devices and integrators connect to."""
    if settings.mqtt_url:
        parts = urlsplit(settings.mqtt_url)
        tls = parts.scheme == "mqtts"
        return parts.hostname or "localhost", parts.port or (8883 if tls else 1883), tls
    host = settings.mqtt_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reachable under the page's own name
        host = request.url.hostname or "localhost"
    return host, settings.mqtt_port, False


def firmware_config(
    settings: Settings, request: Request, machine_id: str, api_key: str, motors: int = 1
) -> dict[str, Any]:
    host, port, tls = mqtt_endpoint(settings, request)
    mqtt: dict[str, Any] = {
        "host": host,
        "port": port,
        "tls": tls,
        "keepalive": settings.mqtt_keepalive_s,
    }
    if tls:
        mqtt["ca_file"] = "/ca.pem"
    return {
        "machine_id": machine_id,
        "api_key": api_key,
        "wifi": {"ssid": "shop-wifi", "password": "wifi-password", "retries": 3, "wait_s": 8},
        "mqtt": mqtt,
        # Firmware updates: downloads from this server (the command's manifest_url is
        # a path on it), releases signed by one of these keys.
        "http_url": str(request.base_url).rstrip("/"),
        "firmware_keys": list(settings.firmware_keys),
        **HARDWARE_DEFAULTS,
        "motors": motor_pins(motors),
    }


def config_data_url(config: dict[str, Any]) -> str:
    """The config as a data: URL, so the key is never stored to be downloaded later."""
    raw = json.dumps(config, indent=2).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode("ascii")


def shopper_url(settings: Settings, request: Request, machine_id: str) -> str:
    base = settings.frontend_url or str(request.base_url)
    return f"{base.rstrip('/')}/m/{machine_id}"


def qr_svg(url: str, title: str) -> Markup:
    """An inline SVG QR code (segno escapes the title)."""
    code = segno.make(url, error="m")
    svg = code.svg_inline(scale=6, border=2, title=title, dark="#000", light="#fff")
    return Markup(svg)  # noqa: S704 - segno's own markup
