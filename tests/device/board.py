"""The files that go on the board, found by following the firmware's imports."""

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "device" / "firmware"


def runtime_imports(path: Path) -> set[str]:
    """Top-level module names imported outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(node.module + "." + alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def board_files() -> list[Path]:
    """main.py, boot.py, hal.py and every repo or board module they import, transitively."""
    todo = [FIRMWARE / "main.py", FIRMWARE / "boot.py", FIRMWARE / "hal.py"]
    seen: list[Path] = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        for name in runtime_imports(path):
            parts = name.split(".")
            if parts[0] in ("device", "schema"):  # a module, or a name inside one
                module = ROOT.joinpath(*parts).with_suffix(".py")
                package = ROOT / parts[0] / "__init__.py"
                todo.extend(p for p in (module, package) if p.exists())
            elif (FIRMWARE / (name + ".py")).exists():  # hal, and what hal imports
                todo.append(FIRMWARE / (name + ".py"))
    return sorted(seen)


def load_main() -> ModuleType:
    """The firmware loop (device/firmware/main.py) as a module, for CPython tests."""
    spec = importlib.util.spec_from_file_location("smartvend_firmware_main", FIRMWARE / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
