"""The firmware loop (main.py) on a scripted board, alike on MicroPython and CPython.

:class:`ScriptedHal` has the HAL's names (see device/firmware/hal.py) with a clock
that moves only when the loop sleeps, an MQTT client that records what it is
sent and hands out the messages of a script at set times, and recorders for the
LCD and the motor. ``play(directory)`` runs ``Firmware`` through a vend and
returns what the board saw, as JSON-ready lists.

Portable: runs under MicroPython and CPython.
"""

from main import Firmware

T0 = 1767225600
MID = "VM-1"
ROOT = "smartvend/v1/machines/" + MID + "/"
LATER = str(T0 + 3600)
DESIRED = (
    '{"version":1,"mode":"in_service","display":{"code":"123456","expires_at":' + LATER + "},"
    '"lock":null,"price":{"amount":2500,"currency":"INR"},"stock":5}'
)
COMMAND = (
    '{"cmd_id":"c1","action":"dispense","quantity":2,"order":"o1","issued_at":'
    + str(T0)
    + ',"expires_at":'
    + LATER
    + "}"
)
# (ms after start, topic, payload): what the broker delivers, and when.
INBOX = [
    (0, "smartvend/v1/server/status", '{"state":"online","ts":' + str(T0) + "}"),
    (0, ROOT + "desired", DESIRED),
    (500, ROOT + "cmd/c1", COMMAND),
    (4000, ROOT + "cmd/c1", COMMAND),  # re-sent: answered from the ledger
]
RUN_MS = 6000
# A machine with three motors: desired slots, a command of two lines on motors 0 and 2.
SLOT_DESIRED = DESIRED[:-1] + (
    ',"slots":[{"id":"A1","motor":0,"name":"Cola","price":{"amount":2000,"currency":"INR"},'
    '"stock":3,"enabled":true},{"id":"B1","motor":2,"name":"Chips","price":{"amount":1500,'
    '"currency":"INR"},"stock":2,"enabled":true}]}'
)
SLOT_COMMAND = COMMAND[:-1] + (
    ',"lines":[{"slot":"A1","motor":0,"quantity":1},{"slot":"B1","motor":2,"quantity":1}]}'
)
MOTORS = [{"ena": 25, "in1": 26, "in2": 27}, {"in1": 14, "in2": 12}, {"in1": 18, "in2": 19}]


class _Client:
    def __init__(self, hal: object) -> None:
        self.hal = hal
        self.sock = self
        self.cb = None

    def set_callback(self, cb: object) -> None:
        self.cb = cb

    def set_last_will(self, topic: str, msg: bytes, retain: bool, qos: int) -> None:
        self.hal.record("will", topic, msg, retain, qos)

    def connect(self) -> bool:
        self.hal.record("connect")
        return False

    def publish(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        self.hal.record("publish", topic, msg, retain, qos)

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.hal.record("subscribe", topic, qos)

    def check_msg(self) -> object:
        inbox = self.hal.inbox
        if inbox and inbox[0][0] <= self.hal.ms:
            _, topic, payload = inbox.pop(0)
            self.cb(topic.encode(), payload.encode())
            return 1
        return None

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass

    def disconnect(self) -> None:
        pass


class _Part:
    def __init__(self, hal: object, name: str, index: int = 0) -> None:
        self.hal = hal
        self.name = name
        self.index = index

    def show(self, line1: str, line2: str) -> None:
        self.hal.record("lcd", line1, line2)

    def on(self) -> None:
        self.hal.record("motor_on", self.index)

    def off(self) -> None:
        self.hal.record("motor_off", self.index)

    def feed(self) -> None:
        pass


class ScriptedHal:
    def __init__(self, directory: str, inbox: list) -> None:
        self.directory = directory
        self.ms = 0
        self.inbox = list(inbox)
        self.seen = []

    def record(self, *what: object) -> None:
        row = [self.ms]
        for item in what:
            row.append(item.decode() if isinstance(item, bytes) else item)
        self.seen.append(row)

    def flash_path(self, name: str) -> str:
        return self.directory + "/" + name

    def lcd(self, config: dict) -> _Part:
        return _Part(self, "lcd")

    def motors(self, config: dict) -> list:
        return [_Part(self, "motor", i) for i in range(len(config.get("motors") or [0]))]

    def drop_sensor(self, config: dict) -> None:
        return None

    def door(self, config: dict) -> None:
        return None

    def watchdog(self, config: dict) -> _Part:
        return _Part(self, "watchdog")

    def ticks_ms(self) -> int:
        return self.ms

    def ticks_diff(self, later: int, earlier: int) -> int:
        return later - earlier

    def sleep_ms(self, ms: int) -> None:
        self.ms += ms

    def now(self) -> int:
        return T0 + self.ms // 1000

    def mqtt(self, config: dict) -> _Client:
        return _Client(self)

    def wifi_ok(self) -> bool:
        return True

    def connect_wifi(self, config: dict) -> bool:
        return True

    def sync_time(self, config: dict) -> bool:
        return True

    def metrics(self) -> dict:
        return {"rssi": -61}

    def log(self, message: str) -> None:
        self.record("log", message)


def play(directory: str, slots: bool = False) -> list:
    """A vend on a one-motor machine, or (``slots``) an order of two lines on a
    three-motor machine."""
    inbox = INBOX
    config = {"machine_id": MID, "motor_ms": 800, "settle_ms": 200, "telemetry_s": 0}
    if slots:
        inbox = [INBOX[0], (0, INBOX[1][1], SLOT_DESIRED)]
        inbox += [(t, topic, SLOT_COMMAND) for t, topic, _ in INBOX[2:]]
        config["motors"] = MOTORS
    hal = ScriptedHal(directory, inbox)
    firmware = Firmware(hal, config)
    firmware.run_forever(lambda: hal.ms >= RUN_MS)
    return hal.seen
