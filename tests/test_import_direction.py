"""The package graph of STYLE.md, checked on the source, plus what importing may not do.

schema imports none of ours; broker and device import only schema; api imports
schema and broker; web imports api (and schema, broker). Every ``__init__.py``
is empty, no installed distribution shares a name with our packages, and
importing any module opens no socket and reads no environment variable.
"""

import ast
import importlib.util
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "broker", "device", "api", "web")
MAY_IMPORT = {
    "schema": set(),
    "broker": {"schema"},
    "device": {"schema"},
    "api": {"schema", "broker"},
    "web": {"api", "schema", "broker"},
}
# MicroPython files: their imports (machine, network, hal ...) exist only on the board.
BOARD_ONLY = ROOT / "device" / "firmware"
# Import-time behaviour is checked on the server packages and the CPython device code.
IMPORT_CHECKED = ("schema", "broker", "device", "api", "web")


def source_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved.

    ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) - 1:
                    raise ValueError(f"{module}:{node.lineno}: relative import beyond the top")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            if node.module is None:  # from . import x: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def wrong_targets(package: str, targets: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The imports of ``package`` that point at one of ours it may not use."""
    allowed = MAY_IMPORT[package] | {package}
    return [
        (line, target)
        for line, target in targets
        if target.split(".")[0] in PACKAGES and target.split(".")[0] not in allowed
    ]


def wrong_arrows(package: str) -> list[str]:
    found = []
    for path in source_files(package):
        if BOARD_ONLY in path.parents:
            continue
        source = path.read_text(encoding="utf-8")
        targets = list(imports_of(source, module_name(path), is_package=path.name == "__init__.py"))
        for line, target in wrong_targets(package, targets):
            found.append(f"{path.relative_to(ROOT)}:{line}: {package} imports {target}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_import_arrows_follow_style(package: str) -> None:
    assert source_files(package), f"{package}/ has no Python files"
    assert wrong_arrows(package) == []


def test_board_files_import_only_device_and_schema() -> None:
    """The firmware may import board modules, but of ours only device and schema."""
    found = []
    for path in sorted(BOARD_ONLY.rglob("*.py")):
        for line, target in imports_of(path.read_text(encoding="utf-8"), module_name(path)):
            if target.split(".")[0] in {"api", "broker", "web"}:
                found.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert found == []


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import api.infra.db", "broker.acl", {"api.infra.db"}),
        ("from api import db", "broker.acl", {"api"}),
        ("from ..api import db", "broker.sub.mod", {"broker.api"}),
        ("from .. import web", "api.services.locks", {"api", "api.web"}),
        ("from . import x", "schema.models", {"schema", "schema.x"}),
        ("def f():\n    from web.app import x", "api.cli", {"web.app"}),
        ("importlib.import_module('web.app')", "api.server.serve", {"web.app"}),
        ("__import__('device')", "api.x", {"device"}),
    ],
)  # fmt: skip
def test_the_walker_sees_every_form(source: str, module: str, expected: set[str]) -> None:
    assert {target for _line, target in imports_of(source, module)} == expected


def test_the_walker_catches_wrong_arrows() -> None:
    source = "import schema.models\nfrom broker import acl\nfrom web.app import x\nimport device\n"
    assert wrong_targets("api", list(imports_of(source, "api.x"))) == [
        (3, "web.app"),
        (4, "device"),
    ]
    assert [t for _l, t in wrong_targets("schema", list(imports_of(source, "schema.x")))] == [
        "broker",
        "web.app",
        "device",
    ]
    assert wrong_targets("web", list(imports_of("from api import db", "web.x"))) == []
    # A relative import cannot leave its package: it resolves inside it, or fails.
    assert wrong_targets("api", list(imports_of("from ..web import x", "api.http.y"))) == []
    with pytest.raises(ValueError, match="beyond the top"):
        list(imports_of("from ...web import pages", "api.http.x"))


@pytest.mark.parametrize("package", PACKAGES)
def test_init_files_are_empty(package: str) -> None:
    inits = list((ROOT / package).rglob("__init__.py"))
    assert (ROOT / package / "__init__.py") in inits
    assert [str(p.relative_to(ROOT)) for p in inits if p.read_text().strip()] == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_pypi_distribution_shares_a_package_name(package: str) -> None:
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution(package)  # what `pip show <name>` looks up
    assert set(metadata.packages_distributions().get(package, [])) <= {"smartvend"}
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == ROOT / package / "__init__.py"


def test_no_dependency_is_named_like_a_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    names = {req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()
             for req in requirements}  # fmt: skip
    assert names.isdisjoint(PACKAGES)


# Runs in a fresh interpreter: imports every module with sockets refused and
# os.environ traced; prints a JSON report of what our own files did.
IMPORT_PROBE = r"""
import importlib, json, os, socket, sys, sysconfig, traceback

roots = tuple(json.loads(sys.argv[1]))
modules = json.loads(sys.argv[2])
events = []
this_file = sys._getframe().f_code.co_filename

stdlib = sysconfig.get_paths()["stdlib"] + "/"

def blame():
    # Who asked: skip this probe, and standard-library functions called on
    # someone's behalf (os.getenv, socket.create_connection ...); a stdlib
    # module's own top level is the stdlib's doing, not its importer's.
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        name = code.co_filename
        helper = name == this_file or name.startswith("<frozen")
        if name.startswith(stdlib) and "site-packages" not in name:
            helper = code.co_name != "<module>"
        if not helper:
            return name, frame.f_lineno
        frame = frame.f_back
    return "?", 0

def record(kind, what):
    name, line = blame()
    if name.startswith(roots):
        events.append(f"{name}:{line}: {kind} {what}")

class TracedEnviron(type(os.environ)):
    def __getitem__(self, key):
        record("reads env", key)
        return super().__getitem__(key)

    def __contains__(self, key):
        record("reads env", key)
        return super().__contains__(key)

    def __iter__(self):
        record("lists env", "")
        return super().__iter__()

env = os.environ
os.environ = TracedEnviron(
    env._data, env.encodekey, env.decodekey, env.encodevalue, env.decodevalue
)

class NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        record("opens a socket", repr(args))
        raise OSError("no sockets while importing")

def no_lookup(*args, **kwargs):
    record("resolves a name", repr(args[:2]))
    raise OSError("no name lookups while importing")

socket.socket = NoSocket
socket.getaddrinfo = no_lookup

for module in modules:
    try:
        importlib.import_module(module)
    except BaseException:
        events.append(f"{module}: import failed:\n{traceback.format_exc()}")
print(json.dumps({"imported": sorted(set(modules) & set(sys.modules)), "events": events}))
"""


def checked_modules() -> list[str]:
    return sorted(
        module_name(path)
        for package in IMPORT_CHECKED
        for path in source_files(package)
        if BOARD_ONLY not in path.parents
    )


def test_importing_opens_no_socket_and_reads_no_env() -> None:
    modules = checked_modules()
    assert {"api.settings", "broker.embedded", "schema.models", "web.app"} <= set(modules)
    roots = [str(ROOT / package) + "/" for package in IMPORT_CHECKED]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, json.dumps(roots), json.dumps(modules)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    assert report["imported"] == modules


def test_the_import_probe_notices_env_reads_and_sockets(tmp_path: Path) -> None:
    """The probe is not blind: a module that misbehaves at import is reported."""
    bad = tmp_path / "pkg"
    bad.mkdir()
    (bad / "__init__.py").write_text("")
    (bad / "reads.py").write_text("import os\nHOME = os.environ.get('HOME')\n")
    (bad / "getenv.py").write_text("from os import getenv\nX = getenv('SMARTVEND_X')\n")
    (bad / "dials.py").write_text("import socket\nsocket.create_connection(('127.0.0.1', 9))\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); exec({IMPORT_PROBE!r})",
            json.dumps([str(bad) + "/"]),
            json.dumps(["pkg.reads", "pkg.getenv", "pkg.dials"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = "\n".join(json.loads(done.stdout.strip().splitlines()[-1])["events"])
    assert "reads.py:2: reads env HOME" in events
    assert "getenv.py:2: reads env SMARTVEND_X" in events
    assert "dials.py:2: opens a socket" in events or "dials.py:2: resolves a name" in events
