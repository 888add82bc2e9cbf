"""The server's MQTT side: one connection that feeds the services and drains the outbox.

``Bridge.run()`` keeps a connection to the broker (embedded or external) until
cancelled, reconnecting with capped exponential backoff.  On every connect it

1. registers ``server/status`` offline as its will and publishes ``online``;
2. subscribes to every machine's ``status``, ``reported``, ``telemetry``,
   ``events`` and ``results/+`` (handled by :class:`api.mqtt.ingest.Ingest`);
3. publishes the outbox backlog, then republishes from the database every
   machine's ``desired`` and ``state`` and every unfinished ``cmd``: a broker
   may have restarted and lost its retained messages; with several workers the
   leader then reads every machine's retained ``status`` again (a plain
   subscription, at once dropped: shared subscriptions get no retained
   messages), so an ``online`` published while no worker was subscribed, or
   taken by a worker that died before handling it, still counts (the boot rule
   makes a repeat change nothing);
4. drains the outbox whenever ``kick()`` is called, and every ``poll_s`` anyway;
5. with a :class:`api.services.ha_feed.HomeAssistantFeed`, publishes its retained
   ``today`` topics and Home Assistant discovery with the republish, again when
   Home Assistant announces itself ``online`` on ``{prefix}/status``, and writes
   what changed to the outbox at most every ``feed_refresh_s`` after a commit (and
   every ``FEED_IDLE_S`` anyway, which carries the figures over local midnight), in
   a task beside the drain, so a vend's command never waits for the fleet's figures;
   the drain tells the feed which machines it published about, so a refresh reads
   those (and those with a sale since) rather than the whole fleet.

``kick()`` is the one way the drain is woken. The bridge calls it itself on
every commit through the services' database that wrote outbox rows (an
``after_commit`` listener it holds while ``run()`` runs; the writers in
``api.services.outgoing`` mark their transaction), so a service never wakes it
by hand and a commit that wrote none (a telemetry batch, a read) costs the drain
nothing; a new
leadership (``api.server.mqtt_link``) and a dead worker's will call it for the
republish. ``poll_s`` is the fallback for rows that another process committed.

Cancelling ``run()`` publishes ``server/status`` offline (with a time) first.

A connection the broker drops again and again shortly after it was made is
another client taking over the same client id (a broker that forces client id =
username, such as the machines' listener of ``mosquitto-config``, with several
workers on the server's account): the bridge says so in the log and in
``takeover_suspected`` (``/readyz``), naming the workers' own listener.
"""

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

import aiomqtt
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.infra.db import session_class
from api.mqtt.accounts import server_credentials
from api.mqtt.drain import Outgoing, Publish, drain, publish_in_order, retained_pages
from api.mqtt.ingest import DEFAULT_SHARDS, Ingest
from api.observability.collectors import count_mqtt
from api.server.periodic import stop_if_cancelled
from api.services import outgoing
from api.services.container import Services
from api.services.ha_feed import HomeAssistantFeed
from api.settings import Settings
from schema import messages, topics
from schema.errors import SchemaError

log = logging.getLogger(__name__)

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
MQTT_TIMEOUT = 10.0
GOODBYE_TIMEOUT = 2.0
FEED_IDLE_S = 60.0  # the feed is read at least this often, commits or not
SHORT_LIVED_S = 10.0  # a connection lost sooner than this counts towards a take-over
TAKEOVER_DROPS = 3  # short-lived connections in a row that mean a take-over
TAKEOVER_HINT = (
    "the broker keeps dropping this worker's MQTT connection shortly after it connects "
    "(%d times in a row): another client is probably using the same client id %r and "
    "they take each other over. Several workers need their own client ids: connect them "
    "to the broker's server listener (smartvend mosquitto-config --server-port, see "
    "docs/deployment.md), not to the machines' listener, which forces client id = username"
)


def _refused(code: object) -> bool:
    """A SUBACK failure (0x80), as an int (MQTT 3.1.1) or a ReasonCode."""
    failure = getattr(code, "is_failure", None)
    return bool(failure) if failure is not None else code == 0x80


Received = tuple[str, bytes]  # a message's topic and payload, as the bridge reads them


class _Client(aiomqtt.Client):
    """aiomqtt's client queueing each message as (topic, payload). aiomqtt's own
    ``Message`` checks every topic it wraps the way it checks a subscription's filter,
    which was a third of the client's work per message."""

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._queue.put_nowait(cast("aiomqtt.Message", (message.topic, bytes(message.payload))))
        except asyncio.QueueFull:  # the inbox is unbounded: never, but say so if it were
            log.warning("the MQTT inbox is full; a message was dropped")


class Bridge:
    """Connects the services to the broker; see the module docstring."""

    def __init__(
        self,
        services: Services,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        tls: bool = False,
        keepalive: int = 30,
        client_id: str = "smartvend-server",
        shards: int = DEFAULT_SHARDS,
        poll_s: float = 0.5,
        min_backoff: float = 0.5,
        max_backoff: float = 10.0,
        shared_group: str | None = None,
        leads: Callable[[], bool] = lambda: True,
        feed: HomeAssistantFeed | None = None,
        feed_refresh_s: float = 5.0,
    ) -> None:
        self.services = services
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._keepalive = keepalive
        self._client_id = client_id
        self._poll_s = poll_s
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        # Several workers (api.server.cluster): device topics through a shared subscription,
        # and only the leader drains the outbox and republishes retained state.
        self._shared_group = shared_group
        self._leads = leads
        self.ingest = Ingest(services, shards=shards)
        # Set while connected and the retained state has been republished.
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects so far
        self._wake = asyncio.Event()
        self._passes = asyncio.Condition()
        self._passes_started = 0
        self._passes_done = 0
        self._republish_due = True  # the leader republishes retained state when set
        # Home Assistant discovery and the ``today`` topics (api.services.ha_feed).
        self.feed = feed
        self._feed_refresh_s = feed_refresh_s
        self._feed_due = False  # Home Assistant said online: publish the feed again
        self._feed_next = 0.0  # loop time before which no refresh runs
        self._feed_idle = 0.0  # loop time of the next refresh even without commits
        self._feed_dirty = True  # something committed since the last refresh
        self._feed_published: float | None = None  # loop time of the last whole feed
        self._short_drops = 0  # connections in a row the broker dropped soon after connect
        self.takeover_suspected: str | None = None  # why, while it looks like a take-over
        self._connected_at = 0.0
        self._inbox: asyncio.Queue[Received] | None = None  # the client's, when made
        self._refreshing: asyncio.Task[None] | None = None  # the feed's refresh in flight

    @classmethod
    def from_settings(cls, services: Services, settings: Settings, **options: Any) -> "Bridge":
        """A bridge to ``MQTT_URL``, or to the embedded broker with the derived server key.

        ``options`` (see ``api.server.cluster.bridge_options``) override the defaults."""
        creds = server_credentials(settings)
        feed = HomeAssistantFeed(
            services.ctx.db,
            services.ctx.clock,
            settings.ha_discovery_prefix,
            services.ctx.calendar,
        )
        kwargs: dict[str, Any] = {"client_id": creds.username, "feed": feed, **options}
        return cls(
            services,
            host=creds.host,
            port=creds.port,
            username=creds.username,
            password=creds.password,
            tls=creds.tls,
            keepalive=settings.mqtt_keepalive_s,
            **kwargs,
        )

    # -- public ---------------------------------------------------------------

    def kick(self) -> None:
        """Wake the outbox drain: the one way it is woken (module docstring)."""
        self._feed_dirty = True
        self._wake.set()

    async def wait_drained(self) -> None:
        """Wait until a drain pass that started after this call has finished.

        Everything committed to the outbox before the call has then been
        published and acknowledged. Waits through reconnects: bound it with
        ``asyncio.timeout``.
        """
        target = self._passes_started + 1
        self.kick()
        async with self._passes:
            await self._passes.wait_for(lambda: self._passes_done >= target)

    async def run(self) -> None:
        """Serve until cancelled; never returns otherwise.

        While it runs, every commit through the services' database that wrote
        outbox rows wakes the drain; every commit may change the feed's figures.
        """
        sessions = session_class(self.services.ctx.db)
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_begin", self._began)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.ingest.run())
                tg.create_task(self._connection_loop())
        finally:
            event.remove(sessions, "after_commit", self._committed)
            event.remove(sessions, "after_begin", self._began)

    def _began(self, session: Session, *_args: object) -> None:
        outgoing.forget(session)

    def _committed(self, session: Session) -> None:
        if outgoing.wrote(session):
            self.kick()
        else:
            self._feed_dirty = True  # refreshed after the next pass (at most ``poll_s``)

    # -- connection -----------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        bridge = self

        class Inbox(asyncio.Queue[Received]):
            """The client's queue of received messages, known to the bridge (``_receive``)."""

            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(maxsize)
                bridge._inbox = self

        return _Client(
            self.host,
            self.port,
            queue_type=cast("type[asyncio.Queue[aiomqtt.Message]]", Inbox),
            username=self._username,
            password=self._password,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=True,
            keepalive=self._keepalive,
            will=aiomqtt.Will(topics.SERVER_STATUS, messages.server_offline(), qos=1, retain=True),
            socket_options=NODELAY,
            tls_context=ssl.create_default_context() if self._tls else None,
            timeout=MQTT_TIMEOUT,
        )

    async def _connection_loop(self) -> None:
        delay = self._min_backoff
        while True:
            connected_at: float | None = None
            try:
                async with self._client() as client:
                    delay = self._min_backoff
                    self.connections += 1
                    connected_at = self._connected_at = time.monotonic()
                    log.info("connected to the MQTT broker at %s:%d", self.host, self.port)
                    try:
                        await self._serve(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except* aiomqtt.MqttError as group:
                log.warning(
                    "MQTT connection to %s:%d failed or lost (%s); retrying in %.1f s",
                    self.host,
                    self.port,
                    group.exceptions[0],
                    delay,
                )
                self._lost(connected_at)
            except* Exception:
                log.exception("MQTT bridge error; reconnecting in %.1f s", delay)
            finally:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    def _lost(self, connected_at: float | None) -> None:
        """Count connections the broker dropped soon after they were made."""
        if connected_at is None:
            return  # never connected: the broker is down, not taken over
        if time.monotonic() - connected_at >= SHORT_LIVED_S:
            self._short_drops = 0
            self.takeover_suspected = None
            return
        self._short_drops += 1
        if self._short_drops >= TAKEOVER_DROPS:
            self.takeover_suspected = (
                f"the broker dropped this worker's connection {self._short_drops} times in a "
                f"row soon after connecting: client id {self._client_id!r} is probably shared "
                "with another worker; use the broker's server listener (docs/deployment.md)"
            )
            log.error(TAKEOVER_HINT, self._short_drops, self._client_id)

    def _stayed(self) -> None:
        """A connection that lasted: whatever took it over before has stopped."""
        if self._short_drops and time.monotonic() - self._connected_at >= SHORT_LIVED_S:
            if self.takeover_suspected is not None:
                log.info("the MQTT connection is stable again")
            self._short_drops = 0
            self.takeover_suspected = None

    async def _serve(self, client: aiomqtt.Client) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._receive(client))
            tg.create_task(self._publish_side(client))

    async def _receive(self, client: aiomqtt.Client) -> None:
        # Messages already queued are taken straight from the client's queue; only an
        # empty queue waits through the client's iterator (which also notices a lost
        # connection), since that costs a task and a wait per message.
        inbox, waiting = self._inbox, client.messages
        while True:
            if inbox is not None and not inbox.empty():
                topic, data = inbox.get_nowait()
            else:
                topic, data = cast("Received", await anext(waiting))
            if topic == topics.SERVER_STATUS:
                count_mqtt("in", topic)
                self._server_status_seen(data)
                continue
            if self.feed is not None and topic == self.feed.birth_topic:
                count_mqtt("in", topic)
                self._home_assistant_seen(data)
                continue
            await self.ingest.put(topic, data)  # counts it

    async def _publish_side(self, client: aiomqtt.Client) -> None:
        async def publish(message: Outgoing) -> None:
            await client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            count_mqtt("out", message.topic)

        now = self.services.ctx.clock.now()
        await publish(Outgoing(topics.SERVER_STATUS, messages.server_online(now)))
        filters = [(topics.machine_filter(kind), 1) for kind in topics.DEVICE_KINDS]
        if self._shared_group is not None:
            filters = [(topics.shared(self._shared_group, f), qos) for f, qos in filters]
            filters.append((topics.SERVER_STATUS, 1))  # to answer a dead worker's will
        birth = None if self.feed is None else self.feed.birth_topic
        if birth is not None:  # every worker listens, the leader answers
            filters.append((birth, 1))
        granted = await client.subscribe(filters)
        refused = [f for (f, _), code in zip(filters, granted, strict=False) if _refused(code)]
        if refused:
            log.error("the broker refused the server's subscriptions %s", refused)
        self._republish_due = True
        try:
            await self._serve_outbox(client, publish)
        finally:
            await self._stop_refresh()

    async def _serve_outbox(self, client: aiomqtt.Client, publish: Publish) -> None:
        while True:
            stop_if_cancelled()  # a publish's acknowledgement may have eaten the cancel
            if self._republish_due and self._leads():
                # The leader: the backlog, then every retained message the broker may have lost.
                self._republish_due = False
                await self._drain_pass(publish)
                if self._shared_group is not None:  # a dead worker's will said offline
                    online = messages.server_online(self.services.ctx.clock.now())
                    await publish(Outgoing(topics.SERVER_STATUS, online))
                if not await self._republish(publish):
                    continue  # leadership moved on meanwhile
                if self._shared_group is not None:
                    await self._reread_presence(client)
                self._feed_due = self.feed is not None
                self._feed_published = None  # a new connection gets the feed at once
            if self._feed_due and self._leads() and self._feed_may_publish():
                await self._publish_feed(publish)
            self.connected.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._stayed()
            if not self._leads():
                self._republish_due = True  # for when leadership comes (back) here
            await self._drain_pass(publish)
            self._refresh_feed_beside()

    async def _reread_presence(self, client: aiomqtt.Client) -> None:
        """Every machine's retained ``status`` once more, through a plain subscription.

        The broker sends the retained messages right after the SUBACK and before the
        UNSUBACK; they reach ``_receive`` like any other (module docstring, 3)."""
        status = topics.machine_filter("status")
        await client.subscribe(status, qos=1)
        await client.unsubscribe(status)
        log.info("read the machines' retained status again")

    def _server_status_seen(self, payload: bytes) -> None:
        """A worker died (its will said ``offline``): the leader republishes.

        The dead worker may have taken device messages it never handled (a
        result, say). Re-sent unfinished commands make each machine answer again
        from its ledger, and ``online`` corrects the will."""
        try:
            offline = (
                bool(payload) and messages.decode("server_status", payload)["state"] != "online"
            )
        except SchemaError:
            return
        if offline:
            log.info("another server worker went offline; republishing if leader")
            self._republish_due = True
            self.kick()

    def _home_assistant_seen(self, payload: bytes) -> None:
        """Home Assistant (re)started: its birth ``online`` asks for discovery again."""
        if payload.strip() == b"online":
            log.info("Home Assistant is online; publishing discovery again if leader")
            self._feed_due = True
            self.kick()

    def _feed_may_publish(self) -> bool:
        """Births closer than ``feed_refresh_s`` to the last whole feed wait for it:
        a client repeating ``online`` cannot make the server republish without pause."""
        last = self._feed_published
        now = asyncio.get_running_loop().time()
        return last is None or now >= last + self._feed_refresh_s

    async def _publish_feed(self, publish: Publish) -> None:
        """Every message of the feed, published now (the backlog went first)."""
        assert self.feed is not None
        self._feed_due = False
        await self._stop_refresh()  # its older reading must not land after the snapshot
        await self._drain_pass(publish)  # no older feed row may land after the snapshot
        try:
            snapshot = await self.feed.snapshot()
        except Exception:  # the database: the next refresh writes what is missing
            log.exception("reading the Home Assistant feed failed")
            return
        await publish_in_order(publish, [Outgoing(t, p) for t, p in snapshot])
        now = asyncio.get_running_loop().time()
        self._feed_published = now
        self._feed_next, self._feed_idle = now + self._feed_refresh_s, now + FEED_IDLE_S
        log.info("published %d Home Assistant and daily-figure messages", len(snapshot))

    def _refresh_feed_beside(self) -> None:
        """The leader writes what changed in the feed to the outbox (module docstring),
        in a task of its own: reading a large fleet's figures takes a while, and a
        command committed meanwhile is drained at once instead of after it."""
        now = asyncio.get_running_loop().time()
        if self.feed is None or not self._leads() or self._republish_due or self._feed_due:
            return  # not the leader, or the whole feed goes out next anyway
        if self._refreshing is not None and not self._refreshing.done():
            return  # the next pass after it ends looks again
        if not (self._feed_dirty and now >= self._feed_next) and now < self._feed_idle:
            return
        self._feed_dirty = False
        self._feed_next, self._feed_idle = now + self._feed_refresh_s, now + FEED_IDLE_S
        self._refreshing = asyncio.create_task(self._refresh_feed(self.feed))

    async def _refresh_feed(self, feed: HomeAssistantFeed) -> None:
        try:
            await feed.refresh()
        except Exception:
            log.exception("refreshing the Home Assistant feed failed; retrying")

    async def _stop_refresh(self) -> None:
        """A refresh in flight ends before the whole feed or a new connection starts."""
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None and not refreshing.done():
            refreshing.cancel()
            await asyncio.wait([refreshing])  # its cancel is not ours: nothing raised here

    async def _republish(self, publish: Publish) -> bool:
        """Every retained message the server owns, a page of machines at a time, with
        the outbox drained after each page: what a purchase or a lock wrote meanwhile
        waits for one page, not for the whole fleet. False if leadership moved on."""
        count = 0
        async with contextlib.aclosing(retained_pages(self.services.ctx.db)) as pages:
            async for page in pages:
                if not self._leads():
                    self._republish_due = True  # for when leadership comes (back) here
                    return False
                await publish_in_order(publish, page)
                count += len(page)
                await self._drain_pass(publish)
        log.info("republished %d retained messages", count)
        return True

    async def _drain_pass(self, publish: Publish) -> None:
        self._wake.clear()
        self._passes_started += 1
        number = self._passes_started
        try:
            if self._leads():
                await drain(self.services.ctx.db, self._noted(publish))
        except aiomqtt.MqttError:
            raise
        except Exception:  # the database, most likely: the next pass retries
            log.exception("draining the outbox failed; retrying")
            return
        async with self._passes:
            self._passes_done = number
            self._passes.notify_all()

    def _noted(self, publish: Publish) -> Publish:
        """``publish``, telling the feed which machines the outbox published about."""
        feed = self.feed
        if feed is None:
            return publish

        async def noted(message: Outgoing) -> None:
            await publish(message)
            feed.touched(message.topic)

        return noted

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """An orderly ``offline`` before a clean disconnect (which fires no will)."""
        payload = messages.server_offline(self.services.ctx.clock.now())
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await client.publish(topics.SERVER_STATUS, payload, qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError):
            log.info("could not publish the server's offline status")
