"""The controller's side of firmware updates: refused during a vend session, never
started twice, its results published, the trial confirmed only once the server
is seen online, a rollback reported by the old version."""

from typing import Any

from device.memory import MemoryStorage
from schema import topics, updates
from tests.device.rig import MID, T0, Rig

SIGNATURE = "ab" * 64


def update(cmd_id: str, version: str = "1.1.0", expires_at: int = T0 + 600) -> bytes:
    return updates.encode_update(
        {
            "cmd_id": cmd_id,
            "action": "update",
            "firmware": {
                "version": version,
                "manifest_url": f"/api/firmware/{version}/manifest",
                "signature": SIGNATURE,
            },
            "issued_at": T0,
            "expires_at": expires_at,
        }
    )


def ready(storage: MemoryStorage | None = None, **kw: Any) -> Rig:
    rig = Rig(storage=storage)
    rig.connect()
    rig.set_desired(1, **kw)
    return rig


def send_update(rig: Rig, cmd_id: str, **kw: Any) -> None:
    rig.deliver(topics.cmd(MID, cmd_id), update(cmd_id, **kw))


def server_online(rig: Rig) -> None:
    rig.deliver(topics.SERVER_STATUS, b'{"state":"online","ts":1}')


def test_an_idle_machine_starts_the_update_once() -> None:
    rig = ready()
    send_update(rig, "u1")
    assert [a[0] for a in rig.firmware] == ["update"]
    assert rig.firmware[0][1]["firmware"]["version"] == "1.1.0"
    assert rig.results("u1") == []  # ``accepted`` comes once the signed manifest is checked
    send_update(rig, "u1")  # the retained command again, while it runs
    assert len(rig.firmware) == 1
    send_update(rig, "u2")  # another one meanwhile
    assert len(rig.firmware) == 1
    assert [(r["status"], r.get("error")) for r in rig.results("u2")] == [("rejected", "busy")]


def test_refused_during_a_vend_session() -> None:
    locked = ready(lock=True, code=None)
    send_update(locked, "u1")
    assert locked.firmware == []
    assert [(r["status"], r.get("error")) for r in locked.results("u1")] == [("rejected", "busy")]

    dispensing = ready()
    dispensing.order("c1", 2)
    send_update(dispensing, "u2")
    assert dispensing.firmware == []
    assert dispensing.results("u2")[-1]["error"] == "busy"
    dispensing.finish_motor()
    send_update(dispensing, "u2")  # answered from the ledger: the refusal was final
    assert dispensing.firmware == []
    assert len(dispensing.results("u2")) == 2


def test_expired_and_invalid_update_commands_never_start() -> None:
    rig = ready()
    send_update(rig, "u1", expires_at=T0 - 1)
    assert rig.results("u1")[-1]["status"] == "expired"
    payload = update("u2").replace(SIGNATURE.encode(), b"not-hex")
    rig.deliver(topics.cmd(MID, "u2"), payload)
    assert rig.results("u2")[-1]["status"] == "rejected"
    assert rig.results("u2")[-1]["error"].startswith("invalid")
    assert rig.firmware == []


def test_progress_is_published_and_a_failure_recorded() -> None:
    rig = ready()
    send_update(rig, "u1")
    progress = {"stage": "download", "bytes": 1024, "total": 4096}
    running = {"cmd_id": "u1", "status": "running", "dispensed": 0, "ts": T0, "progress": progress}
    before = len(rig.actions)
    rig.send(("update_result", {"cmd_id": "u1", "status": "accepted", "dispensed": 0, "ts": T0}))
    rig.send(("update_result", running))
    payloads = [a[2] for a in rig.actions[before:] if a[0] == "publish" and "/results/" in a[1]]
    assert updates.decode_update_result(payloads[1])["progress"] == progress
    failed = {
        "cmd_id": "u1",
        "status": "failed",
        "dispensed": 0,
        "ts": T0,
        "error": "hash_mismatch",
    }
    rig.send(("update_result", failed))
    assert rig.ctrl.ledger.get("u1") == failed
    send_update(rig, "u2")  # the machine is free for the next one
    assert [a[1]["cmd_id"] for a in rig.firmware] == ["u1", "u2"]


def test_the_new_version_confirms_only_once_it_sees_the_server_online() -> None:
    storage = MemoryStorage()
    rig = Rig({"fw": "1.1.0"}, storage=storage)
    rig.send(("fw_boot", {"current": "1.1.0", "phase": "trial", "cmd_id": "u1", "boots": 1}))
    rig.connect()
    send_update(rig, "u1")  # the retained command, before the server's status
    assert rig.firmware == [] and rig.results("u1") == []
    rig.deliver(topics.SERVER_STATUS, b'{"state":"offline","ts":1}')
    assert rig.firmware == []
    server_online(rig)
    assert rig.firmware == [("fw_confirm", "u1")]
    rig.send(("fw_confirmed", "u1"))
    assert [r["status"] for r in rig.results("u1")] == ["succeeded"]
    assert rig.of_kind("status")[-1]["fw"] == "1.1.0"
    send_update(rig, "u1")
    assert [r["status"] for r in rig.results("u1")] == ["succeeded", "succeeded"]
    server_online(rig)
    assert rig.firmware == [("fw_confirm", "u1")]  # once


def test_the_old_version_reports_a_rollback() -> None:
    rig = Rig({"fw": "1.0.0"})
    state = {"current": "1.0.0", "phase": None, "report": {"cmd_id": "u1", "version": "1.1.0"}}
    rig.send(("fw_boot", state))
    assert rig.firmware == [("fw_reported",)]
    assert rig.results("u1") == []  # not connected yet
    rig.connect()
    assert [(r["status"], r.get("error")) for r in rig.results("u1")] == [("failed", "rolled_back")]
    send_update(rig, "u1")  # the retained command: answered from the ledger, never re-run
    assert len(rig.results("u1")) == 2 and len(rig.firmware) == 1
