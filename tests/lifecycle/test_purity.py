"""The lifecycle is pure: it imports only the standard library's plain parts and ``schema``,
and nothing that reaches a database, a clock, a file or the network."""

import ast
import sys
from pathlib import Path

LIFECYCLE = Path(__file__).resolve().parents[2] / "api" / "lifecycle"
# Standard modules a pure function has no use for: I/O, time, randomness, processes.
IMPURE = {
    "asyncio",
    "datetime",
    "io",
    "logging",
    "os",
    "pathlib",
    "random",
    "secrets",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "uuid",
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_lifecycle_imports_only_the_standard_library_and_schema() -> None:
    modules = sorted(LIFECYCLE.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        for name in imports(path):
            top = name.split(".")[0]
            ours = name == "schema" or name.startswith(("schema.", "api.lifecycle"))
            standard = top in sys.stdlib_module_names and top not in IMPURE
            assert ours or standard, f"{path.name} imports {name}"


def test_nothing_in_the_lifecycle_opens_a_file() -> None:
    for path in sorted(LIFECYCLE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {
            node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not calls & {"open", "write_text", "read_text", "print", "input"}, path.name
