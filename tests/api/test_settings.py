"""Settings from the environment: CONTRACT section 3, aliases, defaults, secrets, errors."""

import stat
from pathlib import Path

import pytest
from starlette.datastructures import Secret

from api.errors import ConfigurationError
from api.settings import Settings, async_database_url

SECRET = "s3cr3t-" + "k" * 40
# Every variable CONTRACT section 3 names, with a value and where it lands.
CONTRACT = {
    "DATABASE_URL": ("postgresql://vend:dbpass@db.example:5433/vend", "database_url"),
    "MQTT_URL": ("mqtts://server:mqttpass@broker.example:8883", "mqtt_url"),
    "MQTT_HOST": ("0.0.0.0", "mqtt_host"),
    "MQTT_PORT": ("18830", "mqtt_port"),
    "HTTP_HOST": ("::1", "http_host"),
    "HTTP_PORT": ("8080", "http_port"),
    "SECRET_KEY": (SECRET, "secret_key"),
    "ADMIN_PASSWORD": ("admin-pass-123", "admin_password"),
    "RAZORPAY_KEY_ID": ("rzp_test_abc", "razorpay_key_id"),
    "RAZORPAY_KEY_SECRET": ("rzp-secret-xyz", "razorpay_key_secret"),
    "RAZORPAY_WEBHOOK_SECRET": ("hook-secret-xyz", "razorpay_webhook_secret"),
    "RAZORPAY_BASE_URL": ("http://127.0.0.1:9999", "razorpay_base_url"),
    "DISPLAY_CODE_TTL_S": ("120", "display_code_ttl_s"),
    "LOCK_TTL_S": ("90", "lock_ttl_s"),
    "SMTP_HOST": ("mail.example", "smtp_host"),
    "SMTP_PORT": ("2525", "smtp_port"),
    "SMTP_USERNAME": ("mailer", "smtp_username"),
    "SMTP_PASSWORD": ("smtp-pass-xyz", "smtp_password"),
    "SMTP_FROM": ("vend@example.com", "smtp_from"),
    "SMTP_TLS": ("true", "smtp_tls"),
    "ALERT_EMAIL": ("ops@example.com", "alert_email"),
    "LOW_STOCK_THRESHOLD": ("4", "low_stock_threshold"),
    "FRONTEND_URL": ("https://vend.example", "frontend_url"),
}
EXPECTED: dict[str, object] = {
    "mqtt_port": 18830,
    "http_port": 8080,
    "display_code_ttl_s": 120,
    "lock_ttl_s": 90,
    "smtp_port": 2525,
    "smtp_tls": True,
    "low_stock_threshold": 4,
}
ALIASES = [
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "ADMIN_PASSWORD",
    "FRONTEND_URL",
    "ALERT_EMAIL",
    "LOW_STOCK_THRESHOLD",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_TLS",
]
# Razorpay keys come in pairs: the other half, for tests that set one of them.
PARTNER = {
    "RAZORPAY_KEY_ID": {"SMARTVEND_RAZORPAY_KEY_SECRET": "partner"},
    "RAZORPAY_KEY_SECRET": {"SMARTVEND_RAZORPAY_KEY_ID": "rzp_test_partner"},
}
SECRET_VALUES = ["dbpass", "mqttpass", SECRET, "admin-pass-123", "rzp-secret-xyz",
                 "hook-secret-xyz", "smtp-pass-xyz"]  # fmt: skip


def plain(value: object) -> object:
    return str(value) if isinstance(value, Secret) else value


def contract_env(prefix: str = "SMARTVEND_") -> dict[str, str]:
    return {prefix + name: value for name, (value, _field) in CONTRACT.items()}


def test_every_contract_variable_is_read_with_the_prefix() -> None:
    settings = Settings.from_env({**contract_env(), "SMARTVEND_ENV": "production"})
    assert settings.env == "production"
    for name, (value, field) in CONTRACT.items():
        got = plain(getattr(settings, field))
        assert got == EXPECTED.get(field, value), name
    assert settings.payments_live


@pytest.mark.parametrize("alias", ALIASES)
def test_unprefixed_alias_is_read(alias: str) -> None:
    value, field = CONTRACT[alias]
    settings = Settings.from_env({**PARTNER.get(alias, {}), alias: value})
    assert plain(getattr(settings, field)) == EXPECTED.get(field, value)


@pytest.mark.parametrize("alias", ALIASES)
def test_prefixed_name_wins_over_alias(alias: str) -> None:
    value, field = CONTRACT[alias]
    other = {"LOW_STOCK_THRESHOLD": "9", "SMTP_PORT": "587", "SMTP_TLS": "false"}.get(
        alias, "other-value"
    )
    environ = {**PARTNER.get(alias, {}), alias: other, f"SMARTVEND_{alias}": value}
    settings = Settings.from_env(environ)
    assert plain(getattr(settings, field)) == EXPECTED.get(field, value)


def test_older_smtp_user_and_minutes_aliases() -> None:
    settings = Settings.from_env({"SMTP_USER": "mailer", "DISPLAY_CODE_TTL_MINUTES": "15"})
    assert settings.smtp_username == "mailer"
    assert settings.display_code_ttl_s == 15 * 60
    both = {"DISPLAY_CODE_TTL_MINUTES": "15", "SMARTVEND_DISPLAY_CODE_TTL_S": "42"}
    assert Settings.from_env(both).display_code_ttl_s == 42


def test_unrelated_unprefixed_variables_are_ignored() -> None:
    """DATABASE_URL, ENV or HTTP_PORT without the prefix belong to other programs."""
    settings = Settings.from_env(
        {"DATABASE_URL": "mysql://elsewhere/db", "ENV": "whatever", "HTTP_PORT": "no", "HOME": "/"}
    )
    assert settings.database_url == "sqlite:///./var/smartvend.db"
    assert settings.env == "dev"
    assert settings.http_port == 8002


@pytest.mark.parametrize(
    ("url", "mapped"),
    [
        ("sqlite:///./var/smartvend.db", "sqlite+aiosqlite:///./var/smartvend.db"),
        ("sqlite:////abs/path/x.db", "sqlite+aiosqlite:////abs/path/x.db"),
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_maps_to_async_drivers(url: str, mapped: str) -> None:
    assert async_database_url(url) == mapped
    assert Settings.from_env({"SMARTVEND_DATABASE_URL": url}).async_database_url == mapped


@pytest.mark.parametrize("url", ["mysql://h/d", "not a url", "oracle://x"])
def test_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        Settings.from_env({"SMARTVEND_DATABASE_URL": url})


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({})
    assert settings.env == "dev"
    assert settings.database_url == "sqlite:///./var/smartvend.db"
    assert settings.async_database_url == "sqlite+aiosqlite:///./var/smartvend.db"
    assert settings.mqtt_url is None
    assert (settings.mqtt_host, settings.mqtt_port) == ("127.0.0.1", 1883)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8002)
    assert settings.display_code_ttl_s == 600
    assert settings.lock_ttl_s == 300
    assert settings.admin_password is None
    assert not settings.payments_live


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("secret", [None, "", "short-secret"])
def test_missing_or_short_secret_outside_dev_is_refused(env: str, secret: str | None) -> None:
    environ = {"SMARTVEND_ENV": env}
    if secret is not None:
        environ["SMARTVEND_SECRET_KEY"] = secret
    with pytest.raises(ConfigurationError, match="SMARTVEND_SECRET_KEY"):
        Settings.from_env(environ)
    long_enough = Settings.from_env({**environ, "SMARTVEND_SECRET_KEY": SECRET})
    assert str(long_enough.secret_key) == SECRET
    assert long_enough.with_dev_secret() is long_enough


def test_dev_secret_is_generated_once_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    settings = Settings.from_env({"SMARTVEND_VAR_DIR": str(var)})
    assert settings.var_dir == var and str(settings.secret_key) == ""

    first = settings.with_dev_secret()
    key = str(first.secret_key)
    assert len(key) >= 32
    stored = var / "secret_key"
    assert stored.read_text().strip() == key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert sorted(p.name for p in var.iterdir()) == ["secret_key"]

    again = Settings.from_env({"SMARTVEND_VAR_DIR": str(var)}).with_dev_secret()
    assert str(again.secret_key) == key
    assert first.with_dev_secret() is first

    given = Settings.from_env({"SMARTVEND_VAR_DIR": str(var), "SMARTVEND_SECRET_KEY": "mine"})
    assert str(given.with_dev_secret().secret_key) == "mine"


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = Settings.from_env({**contract_env(), "SMARTVEND_ENV": "production"})
    for text in (repr(settings), str(settings), f"{settings}", repr(settings.secret_key)):
        for secret in SECRET_VALUES:
            assert secret not in text
    assert "production" in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMARTVEND_HTTP_PORT", "eighty"),
        ("SMARTVEND_MQTT_PORT", "1883.5"),
        ("SMARTVEND_LOCK_TTL_S", "ten"),
        ("SMARTVEND_DISPLAY_CODE_TTL_S", ""),
        ("SMARTVEND_LOW_STOCK_THRESHOLD", "few"),
        ("SMARTVEND_SMTP_TLS", "maybe"),
        ("SMTP_PORT", "smtp"),
        ("LOW_STOCK_THRESHOLD", "x"),
        ("DISPLAY_CODE_TTL_MINUTES", "ten"),
        ("DISPLAY_CODE_TTL_MINUTES", "inf"),
    ],
)
def test_bad_number_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({name: value})
    assert name in raised.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMARTVEND_LOCK_TTL_S", "0"),
        ("SMARTVEND_DISPLAY_CODE_TTL_S", "-5"),
        ("SMARTVEND_HTTP_PORT", "70000"),
        ("SMARTVEND_MQTT_PORT", "-1"),
        ("SMARTVEND_ENV", "staging"),
        ("SMARTVEND_MQTT_URL", "http://broker.example"),
    ],
)
def test_out_of_range_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_razorpay_keys_come_in_pairs() -> None:
    with pytest.raises(ConfigurationError, match="RAZORPAY_KEY_SECRET"):
        Settings.from_env({"RAZORPAY_KEY_ID": "rzp_test_abc"})
    with pytest.raises(ConfigurationError, match="RAZORPAY_KEY_ID"):
        Settings.from_env({"SMARTVEND_RAZORPAY_KEY_SECRET": "x"})
