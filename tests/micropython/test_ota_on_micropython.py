"""Firmware updates on MicroPython itself (the WebAssembly port and its file system),
and the same scenarios on CPython: a good update, a corrupt file, a bad signature,
a busy machine, a crash on boot rolled back, and a power cut at every change."""

import hashlib
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.device.board import FIRMWARE
from tests.micropython import interpreter

HERE = Path(__file__).resolve().parent


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def make_release(
    dest: Path, version: str, key: Ed25519PrivateKey, forger: Ed25519PrivateKey
) -> None:
    files = {
        "main.py": f"VERSION = {version!r}\n" + "# the loop\n" * 150,
        "app.py": "def main():\n    return 1\n" * 100 + f"# {version}\n",
        "lib/util.py": f"NAME = 'util {version}'\n" * 40,
    }
    entries = []
    for path, text in files.items():
        data = text.encode()
        target = dest / version / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        entries.append(
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        )
    manifest = json.dumps(
        {"version": version, "files": entries, "allow_downgrade": False}, separators=(",", ":")
    ).encode()
    (dest / version / "manifest.json").write_bytes(manifest)
    (dest / version / "signature").write_text(key.sign(manifest).hex())
    (dest / version / "forged").write_text(forger.sign(manifest).hex())


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("releases")
    key, other, forger = (Ed25519PrivateKey.generate() for _ in range(3))
    for version in ("1.0.0", "1.1.0"):
        make_release(dest, version, key, forger)
    # The machine trusts two keys (a spare one, then the signer), never the forger's.
    (dest / "keys.json").write_text(json.dumps([_raw(other).hex(), _raw(key).hex()]))
    return dest


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, releases: Path) -> Path:
    dest = tmp_path_factory.mktemp("board")
    interpreter.board_image(dest)
    interpreter.compile_mpy(FIRMWARE / "boot.py", dest / "boot.mpy", "boot.py")
    interpreter.compile_mpy(HERE / "otaplay.py", dest / "otaplay.mpy", "otaplay.py")
    for path in releases.rglob("*"):
        if path.is_file():
            target = dest / "releases" / path.relative_to(releases)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dest


@pytest.fixture
def otaplay(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIRMWARE))  # boot.py imports as ``boot`` on the board
    for name in ("boot", "tests.micropython.otaplay"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("tests.micropython.otaplay")


def both(image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path, call: str) -> object:
    """``otaplay.<call>`` on MicroPython and on CPython: the same answer from both."""
    on_board = call.format(root="/flash/b", releases="/lib/releases")
    code = f"import json, otaplay\nprint(json.dumps(otaplay.{on_board}))\n"
    on_micropython = json.loads(interpreter.run(image, code))
    root = tmp_path / "b"
    on_cpython = eval("otaplay." + call.format(root=str(root), releases=str(releases)))
    assert on_micropython == json.loads(json.dumps(on_cpython))
    return on_micropython


def test_good_update(image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path) -> None:
    out = both(image, otaplay, tmp_path, releases, "good({root!r}, {releases!r})")
    old, new = out["results"]
    assert old[0] == ["u1", "accepted", None]
    assert [r[3] for r in old[1:]] == ["download", "download", "verify", "install"]
    assert {r[1] for r in old[1:]} == {"running"}
    assert new == [["u1", "succeeded", None], ["u1", "succeeded", None]]  # then from the ledger
    assert out["fw"] == ["1.0.0", "1.1.0"]
    assert out["rebooted"] is True
    assert (out["current"], out["previous"]) == ("1.1.0", "1.0.0")
    assert out["state"] == {"current": "1.1.0", "previous": "1.0.0", "phase": None}


def test_dropped_links_resume_with_range(
    image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path
) -> None:
    out = both(image, otaplay, tmp_path, releases, "good({root!r}, {releases!r}, drop_every=3)")
    assert out["results"][1][0] == ["u1", "succeeded", None]
    assert out["current"] == "1.1.0"
    assert out["ranged"] > 0  # resumed from the staged size, never from the start


def test_corrupt_file(image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path) -> None:
    out = both(image, otaplay, tmp_path, releases, "corrupt({root!r}, {releases!r})")
    (results,) = out["results"]
    assert results[0] == ["u1", "accepted", None]
    assert results[-1] == ["u1", "failed", "hash_mismatch"]
    assert out["rebooted"] is False
    assert out["current"] == "1.0.0"
    assert out["state"]["phase"] is None


def test_bad_signature(image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path) -> None:
    out = both(image, otaplay, tmp_path, releases, "bad_signature({root!r}, {releases!r})")
    assert out["results"] == [[["u2", "rejected", "bad_signature"]]]
    assert out["current"] == "1.0.0"
    assert out["rebooted"] is False


def test_busy_during_a_session(
    image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path
) -> None:
    out = both(image, otaplay, tmp_path, releases, "busy({root!r}, {releases!r})")
    assert out == {"results": [[["u1", "rejected", "busy"]]], "updating": False}


def test_crash_on_boot_rolls_back(
    image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path
) -> None:
    out = both(image, otaplay, tmp_path, releases, "crash({root!r}, {releases!r})")
    assert out["boots"] == [["1.1.0", "trial", 1], ["1.1.0", "trial", 2], ["1.1.0", "trial", 3]]
    old, back = out["results"]
    assert old[0] == ["u1", "accepted", None]
    # reported by the old version once it is back, and again from its ledger
    assert back == [["u1", "failed", "rolled_back"], ["u1", "failed", "rolled_back"]]
    assert out["fw"] == ["1.0.0", "1.0.0"]
    assert out["current"] == "1.0.0"
    assert out["state"]["phase"] is None and not out["state"]["report"]


def test_power_cut_at_every_change_leaves_a_complete_version(
    image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path
) -> None:
    steps = otaplay.count_steps(str(tmp_path / "count"), str(releases))
    assert steps > 20
    call = "power_cuts({root!r}, {releases!r}, 0, " + str(steps) + ")"
    rows = both(image, otaplay, tmp_path, releases, call)
    assert len(rows) == steps + 1
    assert [row[1] for row in rows] == [True] * steps + [False]  # the last run is not cut
    for cut_at, _, version, state_version, phase in rows:
        assert version in ("1.0.0", "1.1.0"), cut_at
        assert version == state_version, cut_at  # fw.json names what /current holds
        assert phase in (None, "trial"), cut_at
    versions = [row[2] for row in rows]
    assert "1.0.0" in versions and "1.1.0" in versions
    first_new = versions.index("1.1.0")
    assert versions[first_new:] == ["1.1.0"] * (len(versions) - first_new)  # no way back


def test_boot_enters_the_current_folder(
    image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path
) -> None:
    code = "import json, otaplay\nprint(json.dumps(otaplay.start('/flash/s', '/lib/releases')))"
    output = interpreter.run(image, code).splitlines()
    # The stand-in ``machine`` has no pins: boot.py says so and goes on.
    assert len(output) == 2 and output[0].startswith("[smartvend] boot: AttributeError")
    assert "Pin" in output[0]
    assert json.loads(output[-1]) == ["/flash/s/current", "/flash/s/current"]
    root = tmp_path / "s"
    assert otaplay.start(str(root), str(releases)) == [str(root / "current")] * 2


def test_ed25519_time_and_heap_on_micropython(
    image: Path, releases: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The figures docs/firmware.md gives for MicroPython (printed, loosely bounded)."""
    chunks = [
        "import gc, json, time\ngc.collect()\nbase = gc.mem_alloc()",
        "from device import ed25519\nfrom device.ota import signed_by",
        "resident = gc.mem_alloc() - base\n"
        "data = open('/lib/releases/1.1.0/manifest.json', 'rb').read()\n"
        "sig = open('/lib/releases/1.1.0/signature').read().strip()\n"
        "keys = json.loads(open('/lib/releases/keys.json').read())[1:]",
        "before = gc.mem_alloc()\nt = time.ticks_us()\nok = signed_by(keys, data, sig)\n"
        "us = time.ticks_diff(time.ticks_us(), t)\nchurn = gc.mem_alloc() - before",
        "t = time.ticks_us()\ned25519.sha512(data)\nsha_us = time.ticks_diff(time.ticks_us(), t)",
        "print(json.dumps({'ok': ok, 'resident': resident, 'verify_ms': us // 1000, "
        "'sha512_ms': sha_us // 1000, 'allocated': churn, 'manifest': len(data)}))",
    ]
    figures = json.loads(interpreter.run(image, *chunks).splitlines()[-1])
    with capsys.disabled():
        print(f"\nEd25519 on MicroPython (WebAssembly): {figures}")
    assert figures["ok"] is True
    assert 0 < figures["resident"] < 20 * 1024  # ed25519 + ota + flash, as .mpy
    assert figures["sha512_ms"] <= figures["verify_ms"]


def test_rollback_by_hand(image: Path, otaplay: ModuleType, tmp_path: Path, releases: Path) -> None:
    out = both(image, otaplay, tmp_path, releases, "by_hand({root!r}, {releases!r})")
    assert out == {
        "state": {"current": "1.0.0", "previous": None, "phase": None, "report": None},
        "current": "1.0.0",
        "fw": "1.0.0",
        "results": [],  # nothing to report: no command asked for it
    }
