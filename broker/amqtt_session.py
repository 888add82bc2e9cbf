"""A lighter amqtt ``Session``: the same attributes, a fraction of the memory.

amqtt gives every session a ``transitions`` state machine (about 14 KiB) and two
asyncio queues (about 2 KiB each) even when the session never holds a message.
Here the state is a small object with the same ``state``/``connect``/``disconnect``
interface, and the offline queue is a deque created on first use. Messages the
broker reads are routed as soon as they are read, so the delivery queue is unused.
"""

import time
from collections import OrderedDict, deque
from typing import Any

from amqtt.session import Session


class SessionState:
    """``session.transitions`` without a state machine: new -> connected <-> disconnected."""

    __slots__ = ("_session", "state")

    def __init__(self, session: "LightSession") -> None:
        self._session = session
        self.state = "new"

    def connect(self) -> None:
        if self.state == "connected":
            raise ValueError("session is already connected")
        self.state = "connected"
        self._session.last_connect_time = int(time.time())
        self._session.last_disconnect_time = None

    def disconnect(self) -> None:
        if self.state == "connected":
            self._session.last_disconnect_time = int(time.time())
        self.state = "disconnected"

    def is_connected(self) -> bool:
        return self.state == "connected"


class Backlog:
    """The offline queue (amqtt's ``retained_messages``): a deque made on first use."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[Any] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise IndexError("empty backlog")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items or ())


class LightSession(Session):  # type: ignore[misc]
    """amqtt's Session without the state machine and the queues."""

    def __init__(self) -> None:  # amqtt's attributes, without calling Session.__init__
        self.transitions = SessionState(self)
        self.remote_address: str | None = None
        self.remote_port: int | None = None
        self.client_id: str | None = None
        self.clean_session: bool | None = None
        self.will_flag = False
        self.will_message: bytes | bytearray | None = None
        self.will_qos: int | None = None
        self.will_retain: bool | None = None
        self.will_topic: str | None = None
        self.keep_alive = 0
        self.publish_retry_delay = 0
        self.broker_uri = None
        self.username: str | None = None
        self.password: str | None = None
        self.cafile = self.capath = self.cadata = None
        self._packet_id = 0
        self.parent = 0
        self.last_connect_time: int | None = None
        self.ssl_object = None
        self.last_disconnect_time: int | None = None
        self.attributes: dict[str, Any] = {}
        self.inflight_out: OrderedDict[int, Any] = OrderedDict()
        self.inflight_in: OrderedDict[int, Any] = OrderedDict()
        self.retained_messages = Backlog()
        self.delivered_message_queue = Backlog()
        self.is_anonymous = False

    def clear_queues(self) -> None:
        self.retained_messages = Backlog()
        self.delivered_message_queue = Backlog()

    __hash__ = object.__hash__
