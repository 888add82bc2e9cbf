"""A firmware update on the machine: fetch, check, stage; boot.py switches.

``Updater(flash, cmd, keys, current, fetch, base_url)`` runs one update command
(``schema.updates.decode_update``) a small step at a time, so the firmware loop
keeps feeding the watchdog and answering the broker between two steps:
``step(now)`` does one piece of work (the manifest, one chunk of one file,
the check of one file, the switch order) and returns the results to publish
(``results`` payloads, ``running`` ones with ``progress``). When ``reboot`` is
true the firmware resets and boot.py finishes the switch.

1. **manifest**: fetched whole (a few hundred bytes), its Ed25519 signature
   checked against the trusted keys (``bad_signature``), its version against
   the command's (``bad_signature``) and the running one (``same_version``;
   ``downgrade`` unless the signed manifest allows it), its size against the
   free flash (``no_space``); only then ``accepted``.
2. **download**: each file streamed into ``/staging`` over one request, in
   ``chunk`` bytes (one read and one write per step, the file closed after
   each); after a dropped link a new request resumes from the staged size
   with ``Range`` (a server that answers 200 instead starts the file over). A
   failed request is retried ``retries`` times in a row, after waits of
   ``retry_s`` doubling each time, then ``failed`` ``download_failed``.
   A staging folder from an earlier attempt at the same release is kept (the
   same manifest bytes), so a reboot mid-download resumes where it stopped when
   the command comes again.
3. **verify**: every staged file read back and its sha256 and size compared
   with the signed manifest (``failed`` ``hash_mismatch``, and the bad file is
   removed so a later attempt fetches it again).
4. **install**: ``/fw.json`` gets ``phase: "switch"`` (written atomically); the
   running files were never touched. boot.py does the renames after the reset.

Portable: runs under CPython and MicroPython (``hashlib.sha256``, ``json``).
"""

import hashlib
import json

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from device.flash import Flash

    class Response(Protocol):
        status: int

        def read(self, n: int) -> bytes: ...

        def close(self) -> None: ...

    Fetch = Callable[[str, int], Response]  # (url, offset) -> response; OSError on failure
    Msg = dict[str, Any]

STATE = "fw.json"
STAGING = "staging"
RELEASE = STAGING + "/.release.json"  # the manifest bytes and signature of what is staged
CHUNK = 1024
RETRIES = 5
RETRY_S = 1.0  # the wait after a failed request, doubled after each one in a row (to 30 s)
SPARE = 8192  # bytes the file system keeps free besides the new files
PROGRESS_EVERY = 16384  # bytes between two download progress reports
MAX_MANIFEST = 16384
_HEX = "0123456789abcdef"
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"


def valid_path(path: object) -> bool:
    """``[A-Za-z0-9_.-]`` segments joined by ``/``: no ``..``, no leading ``/``."""
    if not isinstance(path, str) or not 0 < len(path) <= 128:
        return False
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return False
        for ch in segment:
            if ch not in _PATH_CHARS:
                return False
    return path != RELEASE[len(STAGING) + 1 :]


def parse_manifest(data: bytes) -> "Msg":
    """The manifest's fields, checked; ``ValueError`` when it is not one."""
    obj = json.loads(bytes(data).decode("utf-8"))
    if not isinstance(obj, dict) or not isinstance(obj.get("version"), str):
        raise ValueError("manifest: no version")
    files = obj.get("files")
    if not isinstance(files, list) or not files:
        raise ValueError("manifest: no files")
    seen = []
    for entry in files:
        if not isinstance(entry, dict) or not valid_path(entry.get("path")):
            raise ValueError("manifest: bad path")
        digest = entry.get("sha256")
        size = entry.get("size")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError("manifest: bad sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("manifest: bad size")
        if entry["path"] in seen:
            raise ValueError("manifest: path twice")
        seen.append(entry["path"])
    if not isinstance(obj.get("allow_downgrade", False), bool):
        raise ValueError("manifest: bad allow_downgrade")
    return obj


def version_key(version: str) -> "list[Any]":
    """``"1.10.0"`` > ``"1.9.2"``: numeric parts compare as numbers."""
    key: list[Any] = []
    for part in version.replace("-", ".").replace("+", ".").split("."):
        key.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return key


def signed_by(keys: "list[str]", manifest: bytes, signature: str) -> bool:
    """True when one of ``keys`` (64 hex chars each) signed ``manifest``."""
    from device import ed25519  # only while an update is checked: 9 KB of heap

    try:
        sig = ed25519.from_hex(signature)
    except ValueError:
        return False
    for key in keys:
        try:
            public = ed25519.from_hex(key)
        except ValueError:
            continue
        if ed25519.verify(public, manifest, sig):
            return True
    return False


def hex_digest(data: bytes) -> str:
    return "".join(_HEX[b >> 4] + _HEX[b & 15] for b in data)


class Updater:
    def __init__(
        self,
        flash: "Flash",
        cmd: "Msg",
        keys: "list[str]",
        current: str,
        fetch: "Fetch",
        base_url: str = "",
        chunk: int = CHUNK,
        retries: int = RETRIES,
        retry_s: float = RETRY_S,
    ) -> None:
        self.flash = flash
        self.cmd_id: str = cmd["cmd_id"]
        self.firmware: Msg = cmd["firmware"]
        self.keys = keys
        self.current = current
        self.fetch = fetch
        self.base_url = base_url.rstrip("/")
        self.chunk = chunk
        self.retries = retries
        self.retry_s = retry_s
        self.wait_until: float = 0  # after a failed request: not before this time
        self.stage = "manifest"
        self.files: list[Msg] = []
        self.index = 0  # the file being downloaded or checked
        self.done_bytes = 0  # staged bytes of the files before ``index``
        self.total = 0
        self.reported = -1  # bytes at the last progress report
        self.failures = 0
        self.reboot = False
        self.finished = False
        self.response: Response | None = None  # the file being streamed
        self.appending = False  # its chunks go after what is staged

    # -- results --

    def _result(self, status: str, now: float, error: "str | None" = None) -> "Msg":
        result: Msg = {"cmd_id": self.cmd_id, "status": status, "dispensed": 0, "ts": int(now)}
        if error is not None:
            result["error"] = error
        return result

    def _end(self, status: str, error: str, now: float) -> "list[Msg]":
        self._close()
        self.finished = True
        return [self._result(status, now, error)]

    def _progress(self, stage: str, done: int, now: float) -> "Msg":
        result = self._result("running", now)
        result["progress"] = {"stage": stage, "bytes": done, "total": self.total}
        return result

    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return self.base_url + path

    def file_url(self, path: str) -> str:
        """Next to the manifest: ``.../{version}/manifest`` -> ``.../{version}/files/{path}``."""
        manifest = self.url(self.firmware["manifest_url"])
        if manifest.endswith("/manifest"):
            return manifest[: -len("manifest")] + "files/" + path
        return self.url("/api/firmware/" + self.firmware["version"] + "/files/" + path)

    # -- the steps --

    def step(self, now: float) -> "list[Msg]":
        """One piece of work; the results it produced, in order."""
        if self.finished or self.reboot or now < self.wait_until:
            return []
        if self.stage == "manifest":
            return self._manifest(now)
        if self.stage == "download":
            return self._download(now)
        if self.stage == "verify":
            return self._verify(now)
        return self._install(now)

    def _manifest(self, now: float) -> "list[Msg]":
        try:
            data = self._get(self.url(self.firmware["manifest_url"]), MAX_MANIFEST)
        except OSError:
            return self._failed(now)
        self.failures = 0
        signature = self.firmware["signature"]
        if not signed_by(self.keys, data, signature):
            return self._end("rejected", "bad_signature", now)
        try:
            manifest = parse_manifest(data)
        except ValueError:
            return self._end("rejected", "bad_signature", now)
        version = manifest["version"]
        if version != self.firmware["version"]:
            return self._end("rejected", "bad_signature", now)
        if version == self.current:
            return self._end("rejected", "same_version", now)
        older = version_key(version) < version_key(self.current)
        if older and not manifest.get("allow_downgrade", False):
            return self._end("rejected", "downgrade", now)
        self.files = manifest["files"]
        self.total = 0
        for entry in self.files:
            self.total += entry["size"]
        release = {"manifest": data.decode("utf-8"), "signature": signature}
        if self.flash.read_json(RELEASE) != release:
            self.flash.rmtree(STAGING)
        needed = self.total - self._staged_bytes()
        free = self.flash.free()
        if free >= 0 and needed + SPARE > free:
            return self._end("rejected", "no_space", now)
        if not self.flash.exists(RELEASE):
            self.flash.makedirs(STAGING)
            self.flash.write_json(RELEASE, release)
        self.stage = "download"
        return [self._result("accepted", now), self._progress("download", 0, now)]

    def _failed(self, now: float) -> "list[Msg]":
        """A request failed (a dropped link, a server error): wait, then try again."""
        self.failures += 1
        if self.failures > self.retries:
            return self._end("failed", "download_failed", now)
        self.wait_until = now + min(30.0, self.retry_s * 2 ** (self.failures - 1))
        return []

    def _staged_bytes(self) -> int:
        staged = 0
        for entry in self.files:
            size = self.flash.size(STAGING + "/" + entry["path"])
            staged += min(max(size, 0), entry["size"])
        return staged

    def _get(self, url: str, limit: int) -> bytes:
        response = self.fetch(url, 0)
        try:
            if response.status != 200:
                raise OSError("HTTP " + str(response.status))
            parts = []
            size = 0
            while True:
                data = response.read(self.chunk)
                if not data:
                    break
                size += len(data)
                if size > limit:
                    raise OSError("too large")
                parts.append(data)
        finally:
            response.close()
        return b"".join(parts)

    def _download(self, now: float) -> "list[Msg]":
        if self.index >= len(self.files):
            self.stage = "verify"
            self.index = 0
            return [self._progress("verify", 0, now)]
        entry = self.files[self.index]
        name = STAGING + "/" + entry["path"]
        have = self.flash.size(name)
        if have > entry["size"]:
            self.flash.remove(name)
            have = -1
        if have == entry["size"]:
            self._close()
            self.index += 1
            self.done_bytes += have
            return self._maybe_progress(now)
        if have < 0:
            folder = name.rsplit("/", 1)[0]
            if folder != STAGING:
                self.flash.makedirs(folder)
            have = 0
        try:
            data = self._read(entry, name, have)
        except OSError:
            self._close()
            return self._failed(now)
        self.failures = 0
        f = self.flash.open_write(name, append=self.appending)
        try:
            self.flash.write(f, data)
        finally:
            f.close()
        self.appending = True
        return self._maybe_progress(now)

    def _read(self, entry: "Msg", name: str, have: int) -> bytes:
        """The next chunk of ``entry``: one request per file, read a chunk per step;
        after a dropped link a new request with ``Range`` from the staged size."""
        if self.response is None:
            response = self.fetch(self.file_url(entry["path"]), have)
            self.response = response
            if response.status not in (200, 206):
                raise OSError("HTTP " + str(response.status))
            # A whole file in answer to a Range: start the staged part over.
            self.appending = have > 0 and response.status == 206
        data = self.response.read(min(self.chunk, entry["size"] - (have if self.appending else 0)))
        if not data:
            raise OSError("the link closed early")  # resumed with Range next time
        return bytes(data)

    def _close(self) -> None:
        if self.response is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                self.response.close()
            except OSError:
                pass
            self.response = None

    def _maybe_progress(self, now: float) -> "list[Msg]":
        done = self.done_bytes
        if self.index < len(self.files):
            done += max(0, self.flash.size(STAGING + "/" + self.files[self.index]["path"]))
        due = done - self.reported >= PROGRESS_EVERY or done == self.total
        if due and done != self.reported:
            self.reported = done
            return [self._progress("download", done, now)]
        return []

    def _verify(self, now: float) -> "list[Msg]":
        if self.index >= len(self.files):
            self.stage = "install"
            return [self._progress("install", self.total, now)]
        entry = self.files[self.index]
        name = STAGING + "/" + entry["path"]
        digest = hashlib.sha256()
        size = 0
        f = self.flash.open_read(name)
        try:
            while True:
                data = f.read(self.chunk)
                if not data:
                    break
                size += len(data)
                digest.update(data)
        finally:
            f.close()
        if size != entry["size"] or hex_digest(digest.digest()) != entry["sha256"]:
            self.flash.remove(name)  # fetched again by a later attempt
            return self._end("failed", "hash_mismatch", now)
        self.index += 1
        return []

    def _install(self, now: float) -> "list[Msg]":
        state = self.flash.read_json(STATE) or {}
        self.flash.write_json(
            STATE,
            {
                "current": self.current,
                "previous": state.get("previous"),
                "phase": "switch",
                "version": self.firmware["version"],
                "cmd_id": self.cmd_id,
            },
        )
        self.reboot = True
        return []


# -- the running version's side of a trial (boot.py does the rest) --


def boot_state(flash: "Flash") -> "Msg | None":
    """What boot.py left in ``/fw.json`` (None on a board without updates)."""
    state = flash.read_json(STATE)
    return state if isinstance(state, dict) else None


def confirm(flash: "Flash") -> None:
    """The new version reached the broker and saw the server online: keep it."""
    state = flash.read_json(STATE) or {}
    if state.get("phase") == "trial":
        flash.write_json(
            STATE,
            {"current": state.get("current"), "previous": state.get("previous"), "phase": None},
        )


def give_up(flash: "Flash") -> None:
    """``trial_s`` ran out unconfirmed: boot.py rolls back on the next boot."""
    state = flash.read_json(STATE) or {}
    if state.get("phase") == "trial":
        state["phase"] = "rollback"
        flash.write_json(STATE, state)


def reported(flash: "Flash") -> None:
    """The old version has recorded the rollback's ``failed`` result: forget it."""
    state = flash.read_json(STATE) or {}
    if state.get("report"):
        state["report"] = None
        flash.write_json(STATE, state)


# -- the firmware loop's side (device/firmware/main.py, imported with this module) --


def http_url(config: "Msg") -> str:
    """The server's base URL for downloads: ``http_url``, else the MQTT host
    (``https://host`` with TLS, ``http://host:8002`` without, the server's default)."""
    if config.get("http_url"):
        return str(config["http_url"])
    broker = config.get("mqtt", {})
    host = str(broker.get("host", ""))
    if broker.get("tls"):
        return "https://" + host
    return "http://" + host + ":8002"


def flash_of(firmware: "Any") -> "Flash":
    """The update's view of the flash (device/flash.py), made when first needed."""
    if getattr(firmware, "flash", None) is None:
        from device.flash import Flash

        firmware.flash = Flash(firmware.hal.flash_path(STATE)[: -len("/" + STATE)])
    return firmware.flash  # type: ignore[no-any-return]


def perform(firmware: "Any", action: "tuple[Any, ...]") -> None:
    """The controller's ``update``, ``fw_confirm`` and ``fw_reported`` actions."""
    name = action[0]
    if name == "fw_confirm":
        confirm(flash_of(firmware))
        # Told to the controller by the loop's next step (see step()): never from
        # inside the batch of actions being performed.
        firmware.updater = action[1]
    elif name == "fw_reported":
        reported(flash_of(firmware))
    else:
        hal = firmware.hal
        config = firmware.config
        if firmware.synced_at is None and hal.sync_time(config):  # NTP before TLS
            firmware.synced_at = hal.now()
        firmware.updater = Updater(
            flash_of(firmware),
            action[1],
            config.get("firmware_keys", []),
            firmware.controller.config["fw"],
            lambda url, offset: hal.http_get(config, url, offset),
            http_url(config),
        )


def step(firmware: "Any") -> None:
    """One step of the update under way; the reset that ends it, never mid-vend."""
    updater = firmware.updater
    if isinstance(updater, str):  # a trial just confirmed in flash (see perform())
        firmware.updater = None
        firmware.dispatch(("fw_confirmed", updater))
        return
    if updater.reboot:
        if firmware.controller.job is None and firmware.run is None:
            firmware.hal.log("update: switching to " + updater.firmware["version"])
            firmware.hal.reset()
        return
    for result in updater.step(firmware.hal.now()):
        firmware.dispatch(("update_result", result))
    if updater.finished:
        firmware.updater = None


def trial(firmware: "Any") -> None:
    """A version on trial not confirmed within ``trial_s`` (from the config, 120 s
    by default) of its start gives up: boot.py rolls it back after the reset."""
    hal = firmware.hal
    limit = int(firmware.config.get("trial_s", 120)) * 1000
    if hal.ticks_diff(hal.ticks_ms(), firmware.booted_at) < limit:
        return
    hal.log("update: not confirmed within trial_s, rolling back")
    give_up(flash_of(firmware))
    hal.reset()
