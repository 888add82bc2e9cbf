"""``smartvend serve --workers N`` refuses what several processes cannot share."""

from pathlib import Path

from tests.api.test_cli import Cli, cli  # noqa: F401 - the fixture


def test_several_workers_refuse_sqlite_and_the_embedded_broker(cli: Cli) -> None:  # noqa: F811
    refused = cli("serve", "--workers", "3")
    assert refused.returncode == 2
    message = refused.stderr
    assert "Traceback" not in message
    assert "3 workers need PostgreSQL and an external MQTT broker" in message
    assert "SQLite" in message and "SMARTVEND_DATABASE_URL=postgresql://" in message
    assert "embedded" in message and "SMARTVEND_MQTT_URL" in message


def test_the_workers_setting_is_refused_the_same_way(cli: Cli) -> None:  # noqa: F811
    cli.env["SMARTVEND_WORKERS"] = "2"
    cli.env["SMARTVEND_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    refused = cli("serve")
    assert refused.returncode == 2
    assert "2 workers need" in refused.stderr
    assert "SQLite" not in refused.stderr  # the database is fine: only the broker is named
    assert "SMARTVEND_MQTT_URL" in refused.stderr


def test_zero_workers_is_an_error(cli: Cli) -> None:  # noqa: F811
    refused = cli("serve", "--workers", "0")
    assert refused.returncode == 2 and "at least 1" in refused.stderr


def test_mosquitto_config_writes_a_listener_for_the_workers(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    assert cli("migrate").returncode == 0
    out = tmp_path / "mosq"
    done = cli("mosquitto-config", "--out", str(out), "--port", "18831", "--server-port", "18832")
    assert done.returncode == 0, done.stderr
    assert "SMARTVEND_MQTT_URL=mqtt://127.0.0.1:18832" in done.stdout
    conf = (out / "mosquitto.conf").read_text().splitlines()
    workers = conf.index("listener 18832 127.0.0.1")
    assert conf.index("listener 18831 127.0.0.1") < workers
    assert conf.index("use_username_as_clientid true") < workers  # only for the machines
    assert "use_username_as_clientid true" not in conf[workers:]
    assert f"password_file {out.resolve() / 'passwd-server'}" in conf[workers:]
    assert "max_queued_messages 100000" in conf
    assert (out / "passwd-server").read_text().startswith("smartvend-server:")
    assert "smartvend-server" not in (out / "passwd").read_text()


def test_mosquitto_config_writes_a_tls_listener_for_machines(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    assert cli("migrate").returncode == 0
    out = tmp_path / "mosq"
    half = cli("mosquitto-config", "--out", str(out), "--tls-port", "8883")
    assert half.returncode == 2 and "--tls-cert" in half.stderr
    tls_options = ["--tls-port", "8883", "--tls-host", "0.0.0.0"]
    tls_options += ["--tls-cert", "/etc/ssl/m.pem", "--tls-key", "/etc/ssl/m.key"]
    done = cli("mosquitto-config", "--out", str(out), "--port", "1884", *tls_options)
    assert done.returncode == 0, done.stderr
    conf = (out / "mosquitto.conf").read_text().splitlines()
    tls = conf.index("listener 8883 0.0.0.0")
    assert conf[tls + 1 : tls + 5] == [
        "certfile /etc/ssl/m.pem",
        "keyfile /etc/ssl/m.key",
        "allow_anonymous false",
        "use_username_as_clientid true",
    ]
    assert f"password_file {out.resolve() / 'passwd'}" in conf[tls:]
