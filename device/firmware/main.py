"""SmartVend firmware loop: hardware and MQTT events in, controller actions out.

On the board MicroPython runs this file after boot.py and ``main()`` imports the
real HAL (hal.py). On a PC the same loop runs with ``device.hosthal.HostHal``:
``Firmware(hal, config)`` never imports ``machine`` itself.

One pass of the loop (``Firmware.step``) feeds the watchdog, advances the timer
of the motor now running (``hal.motors(config)``: the action names its index), turns drop-sensor pulses and door changes into events, reads MQTT
(non-blocking), pings the broker, reconnects with backoff when the link is down
(never while the motor runs), and sends a ``tick`` once a second. Every wait
before a reconnect is jittered (0.5 to 1.5 times the backoff), and so is the
telemetry (see the controller), so a fleet that lost its broker together does
not come back in one burst. The MQTT
callback only queues messages: umqtt calls it from inside ``publish`` and
``subscribe`` too, and the controller must not be re-entered.
"""

import json
import random

from device.controller import Controller
from device.storage import JsonFileStorage

LOOP_MS = 10
TICK_MS = 1000
MAX_BACKOFF_MS = 30000
LOST_WAIT_MS = 1000  # before the first reconnect after a link loss (jittered)
NTP_EVERY_S = 6 * 3600


class Firmware:
    def __init__(self, hal: object, config: dict) -> None:
        self.hal = hal
        self.config = config
        path = hal.flash_path(config.get("state_file", "state.json"))
        storage = JsonFileStorage(path, ("ledger", "slots"))  # these stay in flash
        self.motors = hal.motors(config)
        if "motors" not in config:  # the controller refuses lines on motors not wired
            config = dict(config)
            config["motors"] = len(self.motors)
        # What boot.py chose ({}: a board without updates). Read like state.json: the
        # file, or a finished .tmp next to it.
        state = self.fw_state = JsonFileStorage(hal.flash_path("fw.json")).snapshot()
        if state.get("current"):
            config = self.config = dict(config, fw=state["current"])
        # The firmware update under way (device/ota.py has the rest of its state).
        self.updater = None
        self.controller = Controller(config["machine_id"], config, storage, random.random)
        self.lcd = hal.lcd(config)
        self.drop = hal.drop_sensor(config)
        self.door = hal.door(config)
        self.dog = hal.watchdog(config)
        self.client = None
        self.connected = False
        self.broken = False
        self.inbox = []
        self.run = None  # [run, phase ("on" or "settle"), started_ticks, duration_ms, motor]
        self.starting = None  # (run, run_ms, settle_ms, motor) to start after the batch
        self.settle_ms = 0
        self.backoff_ms = 1000
        self.retry_at = None  # ticks of the last failed attempt (None: try now)
        self.wait_ms = 0
        self.last_tick = hal.ticks_ms()
        self.last_ping = self.last_tick
        self.keepalive_ms = int(config.get("mqtt", {}).get("keepalive", 30)) * 1000
        self.synced_at = None

    # -- controller plumbing --

    def dispatch(self, event: tuple) -> None:
        actions = self.controller.handle(event, self.hal.now())
        self.broken = False
        for action in actions:
            self.perform(action)
        if self.starting is not None:  # after the batch's publishes: see perform()
            self.start_motor()
        if self.broken:
            self.lost()

    def start_motor(self) -> None:
        run, run_ms, settle_ms, motor = self.starting
        self.starting = None
        self.motors[motor].on()
        self.run = [run, "on", self.hal.ticks_ms(), run_ms, motor]
        self.settle_ms = settle_ms

    def perform(self, action: tuple) -> None:
        name = action[0]
        if name == "lcd":
            self.lcd.show(action[1], action[2])
        elif name == "motor":
            # Started once the batch is done: a QoS 1 publish after it in the same
            # batch (``reported``) blocks until the broker answers, and a slow
            # answer must not lengthen the motor's run (one turn, one item).
            self.starting = (action[1], action[2], action[3], action[4])
        elif name == "motor_stop":
            self.starting = None
            self.motors_off()
            self.run = None
        elif name == "will":
            self.client = self.hal.mqtt(self.config)
            self.client.set_callback(self.on_message)
            self.client.set_last_will(action[1], action[2], action[3], action[4])
        elif name == "update" or name == "fw_confirm" or name == "fw_reported":
            ota().perform(self, action)
        elif name in ("publish", "subscribe"):
            if self.client is None or not self.connected or self.broken:
                return
            try:
                if name == "publish":
                    self.client.publish(action[1], action[2], action[3], action[4])
                else:
                    self.client.subscribe(action[1], action[2])
            except OSError as exc:
                self.hal.log("mqtt: " + name + " failed: " + repr(exc))
                self.broken = True

    def on_message(self, topic: object, payload: object) -> None:
        if isinstance(topic, (bytes, bytearray)):
            topic = bytes(topic).decode("utf-8")
        self.inbox.append((topic, bytes(payload)))

    # -- connection --

    def lost(self) -> None:
        if self.client is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                self.client.sock.close()
            except (AttributeError, OSError):
                pass
        self.client = None
        was = self.connected
        self.connected = False
        self.retry_at = self.hal.ticks_ms()
        self.wait_ms = jittered(LOST_WAIT_MS)
        if was:
            self.dispatch(("disconnected",))

    def try_connect(self) -> None:
        hal = self.hal
        if not hal.wifi_ok() and not hal.connect_wifi(self.config):
            self.schedule_retry()
            return
        now = hal.now()
        stale = self.synced_at is None or now - self.synced_at > NTP_EVERY_S
        if stale and hal.sync_time(self.config):
            self.synced_at = hal.now()
        if self.synced_at is None and self.config.get("mqtt", {}).get("tls"):
            hal.log("mqtt: no TLS before the clock is set (NTP)")
            self.schedule_retry()
            return
        self.dispatch(("connecting",))
        client = self.client
        try:
            client.connect()
        except Exception as exc:  # OSError, or MQTTException for a refused CONNACK
            hal.log("mqtt: connect failed: " + repr(exc))
            self.client = None
            self.schedule_retry()
            return
        self.connected = True
        self.backoff_ms = 1000
        self.retry_at = None
        self.last_ping = hal.ticks_ms()
        hal.log("mqtt: connected")
        self.dispatch(("connected",))

    def schedule_retry(self) -> None:
        self.retry_at = self.hal.ticks_ms()
        self.wait_ms = jittered(self.backoff_ms)
        self.backoff_ms = min(self.backoff_ms * 2, MAX_BACKOFF_MS)

    # -- the loop --

    def start(self) -> None:
        self.booted_at = self.hal.ticks_ms()  # a trial's time counts from here
        self.dispatch(("boot",))
        state = self.fw_state
        self.fw_state = None  # read once
        if state and (state.get("phase") == "trial" or state.get("report")):
            self.dispatch(("fw_boot", state))
        self.retry_at = None
        self.wait_ms = 0

    def step(self) -> None:
        hal = self.hal
        self.dog.feed()
        self.step_motor()
        if self.drop is not None:
            for _ in range(self.drop.take()):
                self.dispatch(("drop",))
        if self.door is not None:
            is_open = self.door.is_open()
            if is_open != self.controller.door_open:
                self.dispatch(("door", is_open))
        if self.connected:
            self.read_mqtt()
        while self.inbox:
            topic, payload = self.inbox.pop(0)
            self.dispatch(("message", topic, payload))
        if self.updater is not None and self.run is None and self.controller.job is None:
            ota().step(self)  # never while the motor runs: a slow read must not lengthen it
        if self.controller.trial is not None:
            ota().trial(self)  # on trial: rolled back unless confirmed within trial_s
        if not self.connected and self.run is None and self.due():
            self.try_connect()
        t = hal.ticks_ms()
        if hal.ticks_diff(t, self.last_tick) >= TICK_MS:
            self.last_tick = t
            self.dispatch(("tick", hal.metrics()))
        hal.sleep_ms(LOOP_MS)

    def motors_off(self) -> None:
        for motor in self.motors:  # only one ever runs; stopping all is as quick
            motor.off()

    def due(self) -> bool:
        if self.retry_at is None:
            return True
        return self.hal.ticks_diff(self.hal.ticks_ms(), self.retry_at) >= self.wait_ms

    def step_motor(self) -> None:
        run = self.run
        if run is None:
            return
        hal = self.hal
        t = hal.ticks_ms()
        if hal.ticks_diff(t, run[2]) < run[3]:
            return
        if run[1] == "on":
            self.motors[run[4]].off()
            run[1] = "settle"
            run[2] = t
            run[3] = self.settle_ms
            return
        self.run = None
        self.dispatch(("motor_done", run[0]))

    def read_mqtt(self) -> None:
        hal = self.hal
        try:
            for _ in range(20):
                if self.client.check_msg() is None:
                    break
            t = hal.ticks_ms()
            if self.keepalive_ms and hal.ticks_diff(t, self.last_ping) >= self.keepalive_ms // 2:
                self.last_ping = t
                self.client.ping()
        except OSError as exc:
            hal.log("mqtt: link lost: " + repr(exc))
            self.lost()

    def run_forever(self, stop: object = None) -> None:
        """Loop until ``stop()`` returns true (never, on the board)."""
        self.start()
        while stop is None or not stop():
            self.step()
        self.motors_off()
        if self.client is not None and self.connected:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                self.client.disconnect()
            except OSError:
                pass


def ota() -> object:
    """device.ota, imported on the first update: the heap of a machine that is not
    updating does not carry it (nor the Ed25519 code it imports)."""
    from device import ota as module

    return module


def jittered(ms: int) -> int:
    """``ms`` times a random factor from 0.5 to 1.5."""
    return ms // 2 + int(ms * random.random())


def main(hal: object = None, config: dict | None = None) -> None:
    if hal is None:
        import hal as board_hal

        hal = board_hal
    if config is None:
        with open(hal.flash_path("config.json")) as f:
            config = json.loads(f.read())
    firmware = Firmware(hal, config)
    try:
        firmware.run_forever()
    except Exception as exc:  # anything unexpected: log, stop the motor, start over
        hal.log("fatal: " + repr(exc))
        firmware.motors_off()
        hal.sleep_ms(2000)
        hal.reset()


if __name__ == "__main__":
    main()
