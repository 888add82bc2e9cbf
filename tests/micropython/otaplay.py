"""Firmware updates played on a board's file system, alike on MicroPython and CPython.

``releases`` is a folder the test prepared on the PC: ``<version>/manifest.json``,
``<version>/signature`` (hex) and ``<version>/files/...``; :class:`Server` serves
it the way the SmartVend server does (manifest, files with ``Range``), with
faults. Each scenario starts from a board with version 1.0.0 installed by hand
in ``<root>/current`` and returns what happened as JSON-ready data.

Portable: runs under MicroPython (only ``json``, ``os``, ``hashlib``) and CPython.
"""

import hashlib
import json
import os
import sys

import boot
from boot import select

from device import ota
from device.controller import Controller
from device.flash import Flash
from device.storage import JsonFileStorage
from schema import topics, updates, wire

MID = "VM-1"
T0 = 1767225600
OLD = "1.0.0"
NEW = "1.1.0"


class PowerCut(Exception):
    """The power went: nothing after this step happened."""


class CutFlash(Flash):
    """Flash that loses power at its ``cut_at``-th change (a write is torn in half)."""

    def __init__(self, root: str, cut_at: int = -1) -> None:
        super().__init__(root)
        self.ops = 0
        self.cut_at = cut_at

    def _step(self) -> None:
        if self.ops == self.cut_at:
            raise PowerCut()
        self.ops += 1

    def write(self, f: object, data: bytes) -> None:
        if self.ops == self.cut_at:
            f.write(data[: len(data) // 2])
            raise PowerCut()
        self.ops += 1
        f.write(data)

    def rename(self, old: str, new: str) -> None:
        self._step()
        super().rename(old, new)

    def remove(self, name: str) -> None:
        self._step()
        super().remove(name)

    def mkdir(self, name: str) -> None:
        self._step()
        super().mkdir(name)

    def rmdir(self, name: str) -> None:
        self._step()
        super().rmdir(name)


class _Body:
    def __init__(self, data: bytes, status: int, server: "Server") -> None:
        self.data = data
        self.status = status
        self.at = 0
        self.server = server

    def read(self, n: int) -> bytes:
        self.server.reads += 1
        drop = self.server.drop_every
        if drop and self.server.reads % drop == 0:
            raise OSError("connection reset")  # mid-file: resumed with Range
        out = self.data[self.at : self.at + n]
        self.at += len(out)
        return out

    def close(self) -> None:
        pass


class Server:
    """The release files over "HTTP": ``corrupt`` serves one file with a byte
    flipped; ``drop_every`` drops the link at every n-th read."""

    def __init__(self, releases: str, corrupt: str = "", drop_every: int = 0) -> None:
        self.releases = releases
        self.corrupt = corrupt
        self.drop_every = drop_every
        self.reads = 0
        self.ranged = 0

    def fetch(self, url: str, offset: int) -> _Body:
        parts = url.split("/api/firmware/", 1)[1].split("/", 2)
        version = parts[0]
        base = self.releases + "/" + version
        if parts[1] == "manifest":
            return _Body(_read(base + "/manifest.json"), 200, self)
        data = _read(base + "/files/" + parts[2])
        if parts[2] == self.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        if offset:
            self.ranged += 1
            return _Body(data[offset:], 206, self)
        return _Body(data, 200, self)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _keys(releases: str) -> list:
    return json.loads(_read(releases + "/keys.json"))


def command(releases: str, version: str, cmd_id: str = "u1", signed: str = "signature") -> bytes:
    signature = _read(releases + "/" + version + "/" + signed).decode().strip()
    return updates.encode_update(
        {
            "cmd_id": cmd_id,
            "action": "update",
            "firmware": {
                "version": version,
                "manifest_url": "/api/firmware/" + version + "/manifest",
                "signature": signature,
            },
            "issued_at": T0,
            "expires_at": T0 + 3600,
        }
    )


# -- the board --


def _copy(src: str, flash: Flash, dest: str) -> None:
    for name in sorted(os.listdir(src)):
        path = src + "/" + name
        if os.stat(path)[0] & 0x4000:
            flash.makedirs(dest + "/" + name)
            _copy(path, flash, dest + "/" + name)
        else:
            f = flash.open_write(dest + "/" + name)
            f.write(_read(path))
            f.close()


def install(root: str, releases: str, version: str = OLD) -> None:
    """A board set up by hand (mpremote) with ``version`` in ``/current``."""
    _mkdirs(root)
    flash = Flash(root)
    flash.rmtree("current")
    flash.rmtree("previous")
    flash.rmtree("staging")
    for name in ("fw.json", "fw.json.tmp", "state.json", "state.json.tmp"):
        flash.rmtree(name)
    flash.makedirs("current")
    _copy(releases + "/" + version + "/files", flash, "current")
    flash.write_json("fw.json", {"current": version, "previous": None, "phase": None})


def _mkdirs(path: str) -> None:
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        try:  # noqa: SIM105 (no contextlib on MicroPython)
            os.mkdir("/".join(parts[:i]))
        except OSError:
            pass


def version_in(root: str, releases: str, folder: str = "current") -> "str | None":
    """Which release ``folder`` holds, complete and intact (None: neither)."""
    flash = Flash(root)
    for version in (OLD, NEW):
        manifest = json.loads(_read(releases + "/" + version + "/manifest.json"))
        expected = sorted(e["path"] for e in manifest["files"])
        if _files(flash, folder) != expected:
            continue
        for entry in manifest["files"]:
            data = flash.read(folder + "/" + entry["path"])
            if ota.hex_digest(hashlib.sha256(data).digest()) != entry["sha256"]:
                break
        else:
            return version
    return None


def _files(flash: Flash, folder: str, prefix: str = "") -> list:
    out = []
    for name in flash.listdir(folder):
        if name == ".release.json":
            continue
        if flash.is_dir(folder + "/" + name):
            out.extend(_files(flash, folder + "/" + name, prefix + name + "/"))
        else:
            out.append(prefix + name)
    return sorted(out)


# -- the firmware's part, as main.py plays it --


class Board:
    """One life of the machine: boot.py's choice, then the controller and the updater."""

    def __init__(self, root: str, releases: str, server: Server, flash: "Flash | None" = None):
        self.root = root
        self.releases = releases
        self.server = server
        self.flash = flash or Flash(root)
        self.state = select(self.flash)
        fw = (self.state or {}).get("current") or OLD
        config = {"fw": fw, "telemetry_s": 0}
        self.ctrl = Controller(MID, config, JsonFileStorage(root + "/state.json"))
        self.published = []
        self.updater = None
        self.later = []
        self.t = T0
        self.handle(("boot",))
        if self.state:
            self.handle(("fw_boot", self.state))

    def handle(self, event: tuple) -> None:
        self.t += 1
        for action in self.ctrl.handle(event, self.t):
            name = action[0]
            if name == "publish":
                self.published.append([action[1], action[2].decode()])
            elif name == "update":
                self.updater = ota.Updater(
                    self.flash, action[1], _keys(self.releases), self.ctrl.config["fw"],
                    self.server.fetch,
                )  # fmt: skip
            elif name == "fw_confirm":
                ota.confirm(self.flash)
                self.later.append(("fw_confirmed", action[1]))
            elif name == "fw_reported":
                ota.reported(self.flash)
        while self.later:
            self.handle(self.later.pop(0))

    def online(self) -> None:
        """Connect; the broker delivers the retained server status (online)."""
        self.handle(("connecting",))
        self.handle(("connected",))
        online = b'{"state":"online","ts":' + str(T0).encode() + b"}"
        self.handle(("message", topics.SERVER_STATUS, online))

    def command(self, payload: bytes, cmd_id: str = "u1") -> None:
        self.handle(("message", topics.cmd(MID, cmd_id), payload))

    def run_update(self, limit: int = 10000) -> bool:
        """Step the update to its end; True when it asks for the reset into the new version."""
        while self.updater is not None and limit:
            limit -= 1
            self.t += 1  # a second per step: waits after a dropped link pass
            for result in self.updater.step(self.t):
                self.handle(("update_result", result))
            if self.updater.reboot:
                return True
            if self.updater.finished:
                self.updater = None
        return False

    def results(self) -> list:
        out = []
        for topic, payload in self.published:
            if "/results/" in topic:
                r = json.loads(payload)
                row = [r["cmd_id"], r["status"], r.get("error")]
                if "progress" in r:
                    row.append(r["progress"]["stage"])
                out.append(row)
        return out

    def fw(self) -> "str | None":
        for topic, payload in self.published:
            if topic.endswith("/status"):
                return json.loads(payload).get("fw")
        return None


def _summary(root: str, releases: str, boards: list, server: Server) -> dict:
    return {
        "results": [b.results() for b in boards],
        "fw": [b.fw() for b in boards],
        "current": version_in(root, releases),
        "previous": version_in(root, releases, "previous"),
        "state": Flash(root).read_json("fw.json"),
        "ranged": server.ranged,
    }


def good(root: str, releases: str, drop_every: int = 0) -> dict:
    """Update 1.0.0 to 1.1.0; the new version comes online and confirms itself."""
    install(root, releases)
    server = Server(releases, drop_every=drop_every)
    old = Board(root, releases, server)
    old.online()
    old.command(command(releases, NEW))
    rebooted = old.run_update()
    new = Board(root, releases, server)
    new.online()
    new.command(command(releases, NEW))  # the retained command again: from the ledger
    out = _summary(root, releases, [old, new], server)
    out["rebooted"] = rebooted
    return out


def corrupt(root: str, releases: str) -> dict:
    install(root, releases)
    server = Server(releases, corrupt="app.py")
    board = Board(root, releases, server)
    board.online()
    board.command(command(releases, NEW))
    out = _summary(root, releases, [board], server)
    out["rebooted"] = board.run_update()
    out["results"] = [board.results()]
    return out


def bad_signature(root: str, releases: str) -> dict:
    """The release signed by a key the machine does not trust."""
    install(root, releases)
    server = Server(releases)
    board = Board(root, releases, server)
    board.online()
    board.command(command(releases, NEW, "u2", "forged"), "u2")
    out = _summary(root, releases, [board], server)
    out["rebooted"] = board.run_update()
    out["results"] = [board.results()]
    return out


def busy(root: str, releases: str) -> dict:
    """A shopper's session is open: the update is refused."""
    install(root, releases)
    board = Board(root, releases, Server(releases))
    board.online()
    desired = {
        "version": 1,
        "mode": "in_service",
        "display": None,
        "lock": {"session": "s1", "expires_at": T0 + 300},
        "price": {"amount": 2500, "currency": "INR"},
        "stock": 5,
    }
    board.handle(("message", topics.desired(MID), wire.encode("desired", desired)))
    board.command(command(releases, NEW))
    return {"results": [board.results()], "updating": board.updater is not None}


def crash(root: str, releases: str) -> dict:
    """The new version never comes online (it crashes at start): boot.py rolls back
    on the fourth boot and the old version reports ``failed`` ``rolled_back``."""
    install(root, releases)
    server = Server(releases)
    old = Board(root, releases, server)
    old.online()
    old.command(command(releases, NEW))
    old.run_update()
    boots = []
    for _ in range(3):
        st = select(Flash(root))  # a boot of the new version that crashes before going online
        boots.append([st.get("current"), st.get("phase"), st.get("boots")])
    back = Board(root, releases, server)  # the fourth boot
    back.online()
    back.command(command(releases, NEW))  # the retained command again: from the ledger
    out = _summary(root, releases, [old, back], server)
    out["boots"] = boots
    return out


def _full_run(root: str, releases: str, flash: Flash) -> None:
    """An update from start to a confirmed new version, every change through ``flash``."""
    cmd = updates.decode_update(command(releases, NEW))
    updater = ota.Updater(flash, cmd, _keys(releases), OLD, Server(releases).fetch, chunk=512)
    while not updater.reboot:
        updater.step(T0)
        if updater.finished:
            raise AssertionError("update failed")
    select(flash)
    ota.confirm(flash)


def count_steps(root: str, releases: str) -> int:
    install(root, releases)
    flash = CutFlash(root)
    _full_run(root, releases, flash)
    return flash.ops


def power_cuts(root: str, releases: str, first: int, last: int) -> list:
    """Cut the power at each change from ``first`` to ``last``; after each cut the
    board boots again (boot.py finishes or undoes what was under way): the
    version in ``/current`` must be complete, old or new."""
    out = []
    for cut_at in range(first, last + 1):
        install(root, releases)
        flash = CutFlash(root, cut_at)
        try:
            _full_run(root, releases, flash)
            cut = False
        except PowerCut:
            cut = True
        st = select(Flash(root)) or {}
        out.append([cut_at, cut, version_in(root, releases), st.get("current"), st.get("phase")])
    return out


def start(root: str, releases: str) -> list:
    """boot.py's start on a board with ``/current``: the folder MicroPython runs."""
    install(root, releases)
    here = os.getcwd()
    try:
        boot.start(root)
        return [os.getcwd(), sys.path[0]]
    finally:
        os.chdir(here)
        if sys.path[0] == root + "/current":
            sys.path.pop(0)


def by_hand(root: str, releases: str) -> dict:
    """After a good update, the operator asks for the previous version (docs/firmware.md)."""
    good(root, releases)
    flash = Flash(root)
    state = flash.read_json("fw.json")
    state["phase"] = "rollback"
    state["cmd_id"] = None
    flash.write_json("fw.json", state)
    board = Board(root, releases, Server(releases))
    board.online()
    return {
        "state": flash.read_json("fw.json"),
        "current": version_in(root, releases),
        "fw": board.fw(),
        "results": board.results(),
    }
