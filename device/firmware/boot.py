"""Runs first after every reset: choose the firmware version, then make every configured
motor safe (config ``motors``, or the single motor of ``pins``: pins driven low).

The running firmware lives in ``/current``; the version before it in
``/previous``; an update is downloaded and checked in ``/staging`` by the
running version, which then writes ``phase: "switch"`` to ``/fw.json`` and
resets. Only this file moves folders (it is never replaced by an update, so a
bad release cannot break it):

* ``switch``: ``/current`` becomes ``/previous`` and ``/staging`` becomes
  ``/current``, then the new version starts on trial (``phase: "trial"``);
* ``trial``: each boot is counted in ``/fw.json``; a fourth boot without the new
  version confirming itself (it reached the broker and saw the server online),
  or the new version saying its ``trial_s`` ran out (``phase: "rollback"``),
  rolls back: ``/previous`` becomes ``/current`` again and a ``failed``
  ``rolled_back`` report waits in ``/fw.json`` for the old version to publish.

Every step is one rename or removal, and ``/fw.json`` is replaced atomically,
so a power cut anywhere leaves a state this file finishes on the next boot.
Then MicroPython runs ``main.py`` of the chosen folder (it is the working
directory and first on ``sys.path``). Without ``/current`` (a board set up
before updates existed) the files at the root run as before.

Portable (only ``json`` and ``os``): the tests run :func:`select` on MicroPython
and CPython with a flash that cuts the power at every step.
"""

import json
import os

STATE = "fw.json"
MAX_BOOTS = 3  # trial boots before a rollback


class Files:
    """The few file operations the choice needs, under ``root`` ("" on the board)."""

    def __init__(self, root: str = "") -> None:
        self.root = root

    def path(self, name: str) -> str:
        return self.root + "/" + name

    def exists(self, name: str) -> bool:
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def is_dir(self, name: str) -> bool:
        try:
            return os.stat(self.path(name))[0] & 0x4000 != 0
        except OSError:
            return False

    def listdir(self, name: str) -> list:
        try:
            return sorted(os.listdir(self.path(name)))
        except OSError:
            return []

    def rename(self, old: str, new: str) -> None:
        os.rename(self.path(old), self.path(new))

    def remove(self, name: str) -> None:
        os.remove(self.path(name))

    def rmdir(self, name: str) -> None:
        os.rmdir(self.path(name))

    def open_write(self, name: str, append: bool = False) -> object:
        return open(self.path(name), "wb")  # noqa: SIM115

    def write(self, f: object, data: bytes) -> None:
        f.write(data)

    def rmtree(self, name: str) -> None:
        if not self.exists(name):
            return
        if not self.is_dir(name):
            self.remove(name)
            return
        for entry in self.listdir(name):
            self.rmtree(name + "/" + entry)
        self.rmdir(name)

    def read_json(self, name: str) -> object:
        for candidate in (name, name + ".tmp"):
            try:
                with open(self.path(candidate)) as f:
                    data = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return data
        return None

    def write_json(self, name: str, value: object) -> None:
        tmp = name + ".tmp"
        f = self.open_write(tmp)
        try:
            self.write(f, json.dumps(value).encode("utf-8"))
            f.flush()
        finally:
            f.close()
        try:
            self.rename(tmp, name)
        except OSError:  # FAT refuses to rename over an existing file
            if self.exists(name):
                self.remove(name)
            self.rename(tmp, name)


def _switch(fs: object, st: dict) -> dict:
    """Make the checked ``/staging`` the current version, keeping the current one."""
    if fs.exists("staging"):
        if fs.exists("current"):
            fs.rmtree("previous")
            fs.rename("current", "previous")
        fs.rename("staging", "current")
    new = {
        "current": st.get("version"),
        "previous": st.get("current"),
        "phase": "trial",
        "cmd_id": st.get("cmd_id"),
        "boots": 0,
    }
    fs.write_json(STATE, new)
    return new


def _rollback(fs: object, st: dict) -> dict:
    """Bring ``/previous`` back as ``/current``; the failed version is removed."""
    if fs.exists("previous"):
        fs.rmtree("current")
        fs.rename("previous", "current")
        current = st.get("previous")
    else:  # nothing to go back to: keep what runs
        current = st.get("current")
    report = None  # what the old version publishes: ``failed`` ``rolled_back``
    if st.get("cmd_id"):  # (none after a rollback asked for by hand)
        report = {"cmd_id": st.get("cmd_id"), "version": st.get("current")}
    new = {"current": current, "previous": None, "phase": None, "report": report}
    fs.write_json(STATE, new)
    return new


def select(fs: object = None) -> "dict | None":
    """Finish what ``/fw.json`` says is under way; the state the firmware starts in."""
    if fs is None:
        fs = Files()
    st = fs.read_json(STATE)
    if not isinstance(st, dict):
        return None
    if st.get("phase") == "switch":
        st = _switch(fs, st)
    if st.get("phase") == "trial":
        if st.get("boots", 0) >= MAX_BOOTS:
            st = dict(st, phase="rollback")
            fs.write_json(STATE, st)
        else:
            st = dict(st, boots=st.get("boots", 0) + 1)
            fs.write_json(STATE, st)
    if st.get("phase") == "rollback":
        st = _rollback(fs, st)
    return st


def start(root: str = "") -> None:
    """On the board: choose, enter the chosen folder, drive the motor pins low."""
    try:
        select(Files(root))
    except Exception as exc:  # never keep a board from starting
        print("[smartvend] boot: " + repr(exc))
    if Files(root).is_dir("current"):
        import sys

        os.chdir(root + "/current")
        sys.path.insert(0, root + "/current")
    try:
        import hal

        try:
            with open(root + "/config.json") as f:
                config = json.loads(f.read())
        except (OSError, ValueError):
            config = None
        hal.safe_outputs(config)
    except ImportError:  # hal.py not copied yet: a bare board, keep the REPL usable
        pass
    except Exception as exc:  # main.py still runs: it drives the pins itself
        print("[smartvend] boot: " + repr(exc))


if __name__ == "__main__":
    start()
    import gc

    gc.collect()
