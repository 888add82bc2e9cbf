"""MQTT accounts from the database: who may log in, and as what."""

from pathlib import Path

import pytest
from starlette.datastructures import Secret

from api.clock import FakeClock
from api.errors import Conflict, InvalidRequest, NotFound
from api.mqtt.accounts import (
    SERVER_USERNAME,
    DatabaseAuthenticator,
    ServerCredentials,
    create_integrator,
    list_integrators,
    mosquitto_accounts,
    revoke_integrator,
    server_credentials,
    server_password,
)
from api.mqtt.mosquitto import write_mosquitto_config
from api.services.container import Services
from api.settings import Settings
from broker.passwords import verify_secret
from broker.principals import Principal
from tests.bridge.test_vend import register


async def test_authenticator_roles_and_refusals(
    services: Services,
    clock: FakeClock,
    authenticator: DatabaseAuthenticator,
    server_password: str,
) -> None:
    key = await register(services, "vm-1")
    _, password = await create_integrator(services.ctx.db, clock, "acme", "reports")
    auth = authenticator.authenticate
    assert await auth("vm-1", key, "vm-1") == Principal("machine", "vm-1")
    assert await auth("acme", password, "acme") == Principal("integrator", "acme")
    assert await auth(SERVER_USERNAME, server_password, "x") == Principal("server", SERVER_USERNAME)
    assert await auth("vm-1", key, "other-id") is None  # a machine's client id is its id
    assert await auth("vm-1", password, "vm-1") is None
    assert await auth("acme", key, "acme") is None
    assert await auth(SERVER_USERNAME, key, SERVER_USERNAME) is None
    assert await auth("nobody", key, "nobody") is None
    assert await auth("", "", "") is None
    assert await auth("vm-1", "", "vm-1") is None
    await services.machines.revoke_key("vm-1")
    assert await auth("vm-1", key, "vm-1") is None
    await revoke_integrator(services.ctx.db, "acme")
    assert await auth("acme", password, "acme") is None


async def test_integrator_names_are_unique_across_accounts(
    services: Services, clock: FakeClock
) -> None:
    await register(services, "vm-1")
    db = services.ctx.db
    integrator, password = await create_integrator(db, clock, "acme")
    assert len(password) >= 32 and verify_secret(password, integrator.password_hash)
    assert integrator.created_at == clock.now() and not integrator.revoked
    for taken in ("acme", "vm-1", SERVER_USERNAME):
        with pytest.raises(Conflict):
            await create_integrator(db, clock, taken)
    for bad in ("", "a:b", "a/b", "+", "#", "x" * 65, "sp ace", "$SYS"):
        with pytest.raises(InvalidRequest):
            await create_integrator(db, clock, bad)
    with pytest.raises(NotFound):
        await revoke_integrator(db, "nobody")
    assert [i.username for i in await list_integrators(db)] == ["acme"]


async def test_mosquitto_accounts_and_files(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    db = services.ctx.db
    await register(services, "vm-1")
    await register(services, "vm-2")
    await services.machines.revoke_key("vm-2")
    await create_integrator(db, clock, "acme")
    await create_integrator(db, clock, "gone")
    await revoke_integrator(db, "gone")
    accounts = await mosquitto_accounts(db, SERVER_USERNAME, "$7$101$c2FsdA==$" + "A" * 88)
    assert [(u, r) for u, r, _ in accounts] == [
        (SERVER_USERNAME, "server"),
        ("vm-1", "machine"),
        ("acme", "integrator"),
    ]
    paths = await write_mosquitto_config(
        db,
        tmp_path / "mqtt",
        port=18830,
        host="127.0.0.1",
        server_username=SERVER_USERNAME,
        server_password="s3cret-server-password",
    )
    assert [p.name for p in paths] == ["passwd", "acl", "mosquitto.conf"]
    passwd = dict(line.split(":", 1) for line in paths[0].read_text().splitlines())
    assert sorted(passwd) == sorted([SERVER_USERNAME, "vm-1", "acme"])
    assert verify_secret("s3cret-server-password", passwd[SERVER_USERNAME])
    acl = paths[1].read_text()
    assert "user vm-1\ntopic write smartvend/v1/machines/vm-1/status" in acl
    assert "vm-2" not in acl and "gone" not in acl
    conf = paths[2].read_text()
    assert "listener 18830 127.0.0.1" in conf and f"password_file {paths[0]}" in conf
    assert "allow_anonymous false" in conf


def test_server_credentials_from_settings() -> None:
    embedded = Settings(secret_key=Secret("k" * 40), mqtt_host="0.0.0.0", mqtt_port=18831)
    creds = server_credentials(embedded)
    assert (creds.host, creds.port, creds.username, creds.tls) == (
        "127.0.0.1",
        18831,
        SERVER_USERNAME,
        False,
    )
    assert creds.password == server_password(embedded) and len(creds.password) == 64
    other = Settings(secret_key=Secret("j" * 40))
    assert server_password(other) != creds.password
    external = Settings(mqtt_url="mqtts://svc%40acme:p%3Ass@broker.example:8884")
    assert server_credentials(external) == ServerCredentials(
        "broker.example", 8884, "svc@acme", "p:ss", True
    )
    default_port = server_credentials(Settings(mqtt_url="mqtt://u:p@10.0.0.5"))
    assert (default_port.port, default_port.tls) == (1883, False)
    bare = Settings(secret_key=Secret("k" * 40), mqtt_url="mqtt://127.0.0.1:18832")
    assert server_credentials(bare) == ServerCredentials(
        "127.0.0.1", 18832, SERVER_USERNAME, creds.password
    )
