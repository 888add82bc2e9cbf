"""SmartVend settings: one frozen object, read once at start.

Every variable takes the ``SMARTVEND_`` prefix; the older unprefixed names
(``RAZORPAY_KEY_ID``, ``ADMIN_PASSWORD``, ``DISPLAY_CODE_TTL_MINUTES``,
``FRONTEND_URL``, ``SMTP_*`` ...) are accepted as aliases.  Secrets are
``starlette.datastructures.Secret`` so they never show in logs or reprs.
"""

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.config import Config
from starlette.datastructures import Secret

from api.clock import DEFAULT_TIMEZONE, LocalCalendar
from api.errors import ConfigurationError

PREFIX = "SMARTVEND_"
DEV_SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
# Unprefixed names accepted for compatibility: alias -> canonical name.
ALIASES = {
    "RAZORPAY_KEY_ID": "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET": "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET": "RAZORPAY_WEBHOOK_SECRET",
    "ADMIN_PASSWORD": "ADMIN_PASSWORD",
    "FRONTEND_URL": "FRONTEND_URL",
    "ALERT_EMAIL": "ALERT_EMAIL",
    "LOW_STOCK_THRESHOLD": "LOW_STOCK_THRESHOLD",
    "SMTP_HOST": "SMTP_HOST",
    "SMTP_PORT": "SMTP_PORT",
    "SMTP_USER": "SMTP_USERNAME",
    "SMTP_USERNAME": "SMTP_USERNAME",
    "SMTP_PASSWORD": "SMTP_PASSWORD",
    "SMTP_FROM": "SMTP_FROM",
    "SMTP_TLS": "SMTP_TLS",
}


def async_database_url(url: str) -> str:
    """Map ``sqlite:///`` and ``postgresql://`` URLs to their async drivers."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"DATABASE_URL is not a URL: {url!r}")
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite://" + rest
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return "postgresql+asyncpg://" + rest
    raise ConfigurationError(
        f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)"
    )


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _optional(cast: Callable[[str], Any]) -> Callable[[str | None], Any]:
    def convert(value: str | None) -> Any:
        return None if value in (None, "") else cast(value)

    return convert


def _check_home_assistant(prefix: str | None) -> None:
    """``HA_DISCOVERY_PREFIX``: one topic level."""
    from schema import topics

    if prefix is not None and not topics.is_discovery_prefix(prefix):
        raise ConfigurationError(
            f"{PREFIX}HA_DISCOVERY_PREFIX must be one topic level of A-Z a-z 0-9 _ - "
            f"(Home Assistant's default is homeassistant), not {prefix!r}"
        )


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    database_url: str = "sqlite:///./var/smartvend.db"
    var_dir: Path = Path("var")
    mqtt_url: str | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_ws_port: int | None = None
    mqtt_keepalive_s: int = 30
    mqtt_max_payload: int = 16384
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    mqtts_port: int = 8883
    http_host: str = "127.0.0.1"
    http_port: int = 8002
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    admin_password: Secret | None = None
    razorpay_key_id: str | None = None
    razorpay_key_secret: Secret | None = None
    razorpay_webhook_secret: Secret | None = None
    razorpay_base_url: str | None = None
    display_code_ttl_s: int = 600
    lock_ttl_s: int = 300
    command_ttl_s: int = 60
    unit_run_s: int = 10
    max_quantity: int = 5
    code_failure_budget: int = 10
    client_failure_limit: int = 5
    source_failure_limit: int = 6000
    failure_window_s: int = 300
    max_body_bytes: int = 16384
    max_streams: int = 2000  # live pages (Server-Sent Events) open at once
    max_streams_per_client: int = 200  # per source address: a campus NAT is many shoppers
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    smtp_from: str = "smartvend@localhost"
    smtp_tls: bool = False
    alert_email: str | None = None
    low_stock_threshold: int = 3
    offline_alert_minutes: int = 10
    alert_interval_s: int = 30
    report_email_period: str = "off"  # off | daily | weekly: a sales report to ALERT_EMAIL
    report_email_hour: int = 8  # the local hour it goes out (daily: each day; weekly: Monday)
    webhook_interval_s: int = 2  # outgoing webhooks: how often the leader sends what is due
    frontend_url: str | None = None
    demo_machines: int = 0
    # Guessing defences (docs/security.md) and the HTTP edge.
    code_failure_refill_s: int = 15
    source_failures_per_day: int = 43_200
    fleet_code_only_limit: int = 20
    fleet_code_only_refill_s: int = 30
    trusted_proxies: str = ""
    metrics_allow: str = "127.0.0.0/8, ::1"  # who may read /metrics (source addresses)
    workers: int = 1
    log_format: str = "text"
    ha_discovery_prefix: str | None = None  # Home Assistant discovery (off unless set)
    timezone: str = DEFAULT_TIMEZONE  # every day and time operators read (wire stays Unix s)
    firmware_public_keys: str = ""  # comma-separated Ed25519 public keys (64 hex each)
    firmware_max_bytes: int = 4 * 1024 * 1024  # a release upload, instead of MAX_BODY_BYTES

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)

    @property
    def firmware_keys(self) -> tuple[str, ...]:
        from api.firmware.manifest import parse_public_keys

        return parse_public_keys(self.firmware_public_keys)

    @property
    def payments_live(self) -> bool:
        """True when Razorpay keys are set; otherwise the built-in test gateway runs."""
        return bool(self.razorpay_key_id and self.razorpay_key_secret)

    def __repr__(self) -> str:  # secrets are Secret already; keep reprs short
        return f"Settings(env={self.env!r}, database_url=<set>, mqtt_url={bool(self.mqtt_url)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        """Read every setting from ``environ``; raise ConfigurationError when one is wrong."""
        merged: dict[str, str] = {}
        origin: dict[str, str] = {}  # canonical name -> the alias its value came from
        for alias, canon in ALIASES.items():
            if alias in environ and f"{PREFIX}{canon}" not in environ:
                merged[f"{PREFIX}{canon}"] = environ[alias]
                origin[canon] = alias
        if "DISPLAY_CODE_TTL_MINUTES" in environ and f"{PREFIX}DISPLAY_CODE_TTL_S" not in environ:
            minutes = environ["DISPLAY_CODE_TTL_MINUTES"]
            try:
                merged[f"{PREFIX}DISPLAY_CODE_TTL_S"] = str(int(float(minutes) * 60))
            except (ValueError, OverflowError) as exc:
                raise ConfigurationError(
                    f"DISPLAY_CODE_TTL_MINUTES is not a number: {minutes!r}"
                ) from exc
            origin["DISPLAY_CODE_TTL_S"] = "DISPLAY_CODE_TTL_MINUTES"
        # Only prefixed names (and the aliases above) are read: an unrelated
        # DATABASE_URL or ENV in the environment belongs to something else.
        config = Config(environ={**environ, **merged}, env_prefix=PREFIX)
        defaults = cls()
        values: dict[str, Any] = {}
        casts: dict[str, Callable[[Any], Any]] = {
            "mqtt_port": int,
            "mqtt_ws_port": _optional(int),
            "mqtt_keepalive_s": int,
            "mqtt_max_payload": int,
            "mqtt_tls_cert": _optional(Path),
            "mqtt_tls_key": _optional(Path),
            "mqtts_port": int,
            "http_port": int,
            "display_code_ttl_s": int,
            "lock_ttl_s": int,
            "command_ttl_s": int,
            "unit_run_s": int,
            "max_quantity": int,
            "code_failure_budget": int,
            "client_failure_limit": int,
            "source_failure_limit": int,
            "failure_window_s": int,
            "max_body_bytes": int,
            "max_streams": int,
            "max_streams_per_client": int,
            "smtp_port": int,
            "smtp_tls": _bool,
            "low_stock_threshold": int,
            "offline_alert_minutes": int,
            "alert_interval_s": int,
            "report_email_hour": int,
            "webhook_interval_s": int,
            "demo_machines": int,
            "code_failure_refill_s": int,
            "source_failures_per_day": int,
            "fleet_code_only_limit": int,
            "fleet_code_only_refill_s": int,
            "workers": int,
            "firmware_max_bytes": int,
            "var_dir": Path,
            "secret_key": Secret,
            "admin_password": _optional(Secret),
            "razorpay_key_secret": _optional(Secret),
            "razorpay_webhook_secret": _optional(Secret),
            "smtp_password": _optional(Secret),
        }
        for name in cls.__dataclass_fields__:
            cast = casts.get(name, _optional(str) if getattr(defaults, name) is None else str)
            key = name.upper()
            if f"{PREFIX}{key}" not in config.environ:
                continue
            try:
                values[name] = config.get(key, cast=cast)
            except ValueError as exc:
                source = origin.get(key, f"{PREFIX}{key}")
                raise ConfigurationError(f"{source} is invalid: {exc}") from exc
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.env not in ("dev", "production", "test"):
            raise ConfigurationError(
                f"{PREFIX}ENV must be dev, test or production, not {self.env!r}"
            )
        async_database_url(self.database_url)
        if self.mqtt_url is not None:
            parts = urlsplit(self.mqtt_url)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ConfigurationError(
                    f"{PREFIX}MQTT_URL must look like mqtt://user:pass@host:port"
                )
        for name in (
            "display_code_ttl_s",
            "lock_ttl_s",
            "command_ttl_s",
            "unit_run_s",
            "max_quantity",
            "max_body_bytes",
            "max_streams",
            "max_streams_per_client",
            "mqtt_keepalive_s",
            "code_failure_budget",
            "code_failure_refill_s",
            "client_failure_limit",
            "source_failure_limit",
            "source_failures_per_day",
            "failure_window_s",
            "fleet_code_only_limit",
            "fleet_code_only_refill_s",
            "mqtt_max_payload",
            "firmware_max_bytes",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{PREFIX}{name.upper()} must be at least 1")
        if (self.mqtt_tls_cert is None) != (self.mqtt_tls_key is None):
            raise ConfigurationError(
                f"set both {PREFIX}MQTT_TLS_CERT and {PREFIX}MQTT_TLS_KEY, or neither"
            )
        if self.workers < 1:
            raise ConfigurationError(f"{PREFIX}WORKERS must be at least 1")
        if self.report_email_period not in ("off", "daily", "weekly"):
            raise ConfigurationError(f"{PREFIX}REPORT_EMAIL_PERIOD must be off, daily or weekly")
        if not 0 <= self.report_email_hour <= 23:
            raise ConfigurationError(f"{PREFIX}REPORT_EMAIL_HOUR must be an hour, 0 to 23")
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(f"{PREFIX}LOG_FORMAT must be text or json")
        _check_home_assistant(self.ha_discovery_prefix)
        try:
            LocalCalendar(self.timezone)
        except ValueError as exc:
            raise ConfigurationError(
                f"{PREFIX}TIMEZONE is not a known time zone: {self.timezone!r} "
                "(an IANA name, like Asia/Kolkata)"
            ) from exc
        for name in ("http_port", "mqtt_port", "mqtt_ws_port", "mqtts_port", "smtp_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise ConfigurationError(f"{PREFIX}{name.upper()} must be a port, 0 to 65535")
        if not self.dev:
            if not str(self.secret_key):
                raise ConfigurationError(
                    f"{PREFIX}SECRET_KEY is required outside dev mode ({PREFIX}ENV={self.env})"
                )
            if len(str(self.secret_key)) < 32:
                raise ConfigurationError(f"{PREFIX}SECRET_KEY must be at least 32 characters")
        from api.http.source import parse_networks, parse_trusted  # raise on a bad address

        parse_trusted(self.trusted_proxies)
        from api.firmware.manifest import parse_public_keys

        try:
            parse_public_keys(self.firmware_public_keys)
        except ValueError as exc:
            raise ConfigurationError(f"{PREFIX}FIRMWARE_PUBLIC_KEYS: {exc}") from exc
        parse_networks(self.metrics_allow, "METRICS_ALLOW")
        if bool(self.razorpay_key_id) != bool(self.razorpay_key_secret):
            raise ConfigurationError("set both RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET, or neither")

    def with_dev_secret(self) -> "Settings":
        """In dev mode, a missing SECRET_KEY is generated once and kept under var/."""
        if str(self.secret_key) or not self.dev:
            return self
        path = self.var_dir / DEV_SECRET_FILE
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            # Written owner-only (mkstemp) and linked into place whole: a reader
            # never sees a partial key, and of two first starts one key wins.
            fd, tmp = tempfile.mkstemp(dir=self.var_dir, prefix=".secret-")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48) + "\n")
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        key = path.read_text().strip()
        if not key:
            raise ConfigurationError(f"{path} is empty: delete it or set {PREFIX}SECRET_KEY")
        return replace(self, secret_key=Secret(key))
