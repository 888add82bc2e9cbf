"""Any sequence of cloud messages, hardware events, reboots and clock jumps keeps
the device rules: one run per command, never an expired one, a bounded ledger
that survives reboots, versions that never go backwards; for commands with lines,
at most the ordered quantity per line, a total that is the sum of the lines, and
no line run again after a reboot."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.ledger import SIZE
from schema import topics
from tests.device.rig import MID, T0, Rig

_cmd = st.tuples(st.just("cmd"), st.integers(1, 3), st.integers(-30, 120))
# A command with lines: (motor, quantity) per line, motors 0-3 of the 4 wired.
_lines = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 2)), min_size=1, max_size=3)
_lcmd = st.tuples(st.just("lcmd"), _lines, st.integers(-30, 120))
_done = st.tuples(st.just("done"))
_reboot = st.tuples(st.just("reboot"))
_dup = st.tuples(st.just("dup"), st.integers(0, 40))
# Commands, motor completions, reboots and repeats are the interesting part: weight them.
op = st.one_of(
    _cmd,
    _lcmd,
    _lcmd,
    _done,
    _done,
    _reboot,
    _dup,
    _dup,
    st.tuples(st.just("desired"), st.integers(0, 30), st.integers(0, 5)),
    st.tuples(st.just("clear"), st.integers(0, 40)),
    st.tuples(st.just("drop")),
    st.tuples(st.just("jam")),
    st.tuples(st.just("door")),
    st.tuples(st.just("disconnect")),
    st.tuples(st.just("connect")),
    st.tuples(st.just("clock"), st.integers(-200, 400)),
    st.tuples(st.just("tick")),
)


class Checker:
    """Replays ops on a Rig and checks the invariants after each one."""

    def __init__(self, drop_sensor: bool) -> None:
        self.rig = Rig({"drop_sensor": drop_sensor, "motor_ms": 100, "motors": 4})
        self.rig.connect()
        self.cmds: list[tuple[str, int, int]] = []  # (cmd_id, quantity, expires_at)
        self.lines: dict[str, list[tuple[str, int, int]]] = {}  # cmd_id -> its lines
        self.active: str | None = None
        self.closed: set[str] = set()
        self.door = False
        self.version = 0
        self.seen = 0
        self.results = 0

    def apply(self, step: tuple[Any, ...]) -> None:
        rig = self.rig
        name = step[0]
        if name == "desired":
            rig.set_desired(step[1], stock=step[2] * 3, code=f"{step[1]:06d}")
        elif name == "cmd":
            if len(self.cmds) >= SIZE - 4:
                return  # keep re-sent ids within the ledger's memory
            cmd_id = f"c{len(self.cmds)}"
            expires = int(rig.now) + step[2]
            self.cmds.append((cmd_id, step[1], expires))
            rig.order(cmd_id, step[1], expires_at=expires)
        elif name == "lcmd":
            if len(self.cmds) >= SIZE - 4:
                return
            cmd_id = f"c{len(self.cmds)}"
            expires = int(rig.now) + step[2]
            lines = [(f"S{i}", motor, qty) for i, (motor, qty) in enumerate(step[1])]
            self.cmds.append((cmd_id, sum(q for _, _, q in lines), expires))
            self.lines[cmd_id] = lines
            rig.order(cmd_id, expires_at=expires, lines=lines)
        elif name in ("dup", "clear") and self.cmds:
            cmd_id, quantity, expires = self.cmds[step[1] % len(self.cmds)]
            if name == "dup":
                rig.order(cmd_id, quantity, expires_at=expires, lines=self.lines.get(cmd_id))
            else:
                rig.deliver(topics.cmd(MID, cmd_id), b"")
        elif name == "done" and rig.pending:
            rig.send(("motor_done", rig.pending.pop(0)))
        elif name in ("drop", "jam", "tick"):
            rig.send((name,))
        elif name == "door":
            self.door = not self.door
            rig.send(("door", self.door))
        elif name == "reboot":
            before = rig.ctrl.ledger.ids()
            inflight = rig.storage.get("inflight")
            rig.reboot()
            self.door = False
            after = rig.ctrl.ledger.ids()
            if inflight:
                assert after == [*before, inflight["cmd_id"]][-SIZE:]
                unknown = rig.ctrl.ledger.get(inflight["cmd_id"])
                assert unknown["status"] == "unknown"
                # What was counted before the power went, per line too, kept in flash.
                assert unknown["dispensed"] == inflight["dispensed"]
                assert unknown.get("lines") == inflight.get("lines")
            else:
                assert after == before
            rig.connect()
        elif name == "disconnect":
            rig.send(("disconnected",))
        elif name == "connect" and not rig.ctrl.connected:
            rig.connect()
        elif name == "clock":
            rig.now = max(T0 - 1000, rig.now + step[1])
            rig.send(("tick",))
        self.check()

    def check(self) -> None:
        rig = self.rig
        # A command's motor runs all belong to one uninterrupted job: once its
        # job ended (finished, jammed or cut by a reboot) it never runs again.
        for _, cmd_id in rig.motor[self.seen :]:
            assert cmd_id not in self.closed, f"{cmd_id} ran again"
        self.seen = len(rig.motor)
        job = rig.ctrl.job
        if self.active is not None and (job is None or job["cmd_id"] != self.active):
            self.closed.add(self.active)
        self.active = job["cmd_id"] if job else None
        for cmd_id, quantity, _ in self.cmds:
            assert rig.runs_for(cmd_id) <= quantity
            for motor in range(4):  # no motor turns more than its lines ordered
                ordered = sum(q for _, m, q in self.lines.get(cmd_id, ()) if m == motor)
                runs = [m for (_, c), m in zip(rig.motor, rig.motors, strict=True) if c == cmd_id]
                if cmd_id in self.lines:
                    assert runs.count(motor) <= ordered
                else:
                    assert set(runs) <= {0}
        for result in rig.results()[self.results :]:
            lines = self.lines.get(result["cmd_id"])
            if lines is None or result["status"] == "accepted":
                assert "lines" not in result
                continue
            assert [c["slot"] for c in result["lines"]] == [s for s, _, _ in lines]
            for count, (_, _, ordered) in zip(result["lines"], lines, strict=True):
                assert 0 <= count["dispensed"] <= ordered
            assert result["dispensed"] == sum(c["dispensed"] for c in result["lines"])
            if result["status"] == "succeeded":
                assert result["dispensed"] == sum(q for _, _, q in lines)
        self.results = len(rig.results())
        ledger = rig.storage.get("ledger", [])
        assert isinstance(ledger, list) and len(ledger) <= SIZE
        assert [e["cmd_id"] for e in ledger] == rig.ctrl.ledger.ids()
        assert rig.ctrl.version >= self.version
        self.version = rig.ctrl.version
        reported = [r["desired_version"] for r in rig.of_kind("reported")]
        assert reported == sorted(reported)
        boots = [s["boot"] for s in rig.of_kind("status")]
        assert boots == sorted(set(boots))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(op, max_size=60), drop_sensor=st.booleans())
def test_any_sequence_keeps_device_rules(steps: list[tuple[Any, ...]], drop_sensor: bool) -> None:
    checker = Checker(drop_sensor)
    starts: dict[str, float] = {}
    for step in steps:
        before = len(checker.rig.motor)
        checker.apply(step)
        for _, cmd_id in checker.rig.motor[before:]:
            starts.setdefault(cmd_id, checker.rig.now)
    expiry = {c: e for c, _, e in checker.cmds}
    for cmd_id, started in starts.items():
        assert started <= expiry[cmd_id], "an expired command ran"
    # Every command that got a final result keeps that same result forever.
    finals: dict[str, dict[str, Any]] = {}
    for result in checker.rig.results():
        if result["status"] in ("accepted", "running"):
            continue
        previous = finals.setdefault(result["cmd_id"], result)
        assert (previous["status"], previous["dispensed"], previous.get("lines")) == (
            result["status"],
            result["dispensed"],
            result.get("lines"),
        )
