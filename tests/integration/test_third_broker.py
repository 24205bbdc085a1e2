"""A third broker is a new adapter and one registry line: a tiny fake broker ("toy") with its
own config, codec, session adapter, placement and type declaration is registered, and one of
its records streams through ``Feed`` into the SQLite sink — against a tiny fake WebSocket
server in this file. The toy wire is made up for this test (documented below), not a real
broker's:

    client → ``LOGIN <token>``            server → ``WELCOME``
    client → ``SUB <type> <item>``        server → ``OK <type> <item>``, then
                                          ``DATA <type> <item> <price> <side>``
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import msgspec
import pytest
from aiohttp import web

from krfeed import Feed, Record, Subscribed
from krfeed.brokers import BrokerAdapter, PlanRequest, register, unregister
from krfeed.brokers.registry import Plan
from krfeed.engine import Session, SessionOptions, Subscription
from krfeed.engine.delivery import Delivery
from krfeed.engine.session import Frames
from krfeed.schema.core import F, RealtimeType
from krfeed.sinks.sqlite import SQLiteSink

from .helpers import FAST

# ---- the toy broker: what a folder krfeed/brokers/toy/ would hold ----

TOY_TICK = RealtimeType(
    broker="toy",
    code="T1",
    title="장난감 체결",
    name="ToyTick",
    constant="TICK",
    fields=(F("p", "가격", "price", "int"), F("s", "매도매수", "side", "text")),
)


class ToyTick(Record, frozen=True, gc=False, kw_only=True):
    broker: ClassVar[str] = "toy"
    type: ClassVar[str] = "T1"
    title: ClassVar[str] = "장난감 체결"

    price: int | None = None
    side: str | None = None
    extra: tuple[str, ...] = ()


class Welcome(msgspec.Struct, frozen=True):
    pass


class Ack(msgspec.Struct, frozen=True):
    type: str
    item: str


def toy_decode(data: str | bytes, received_at: datetime) -> list[Any]:
    """The toy codec: one message per frame."""
    text = data.decode() if isinstance(data, bytes) else data
    word, *rest = text.split()
    if word == "WELCOME":
        return [Welcome()]
    if word == "OK":
        return [Ack(rest[0], rest[1])]
    if word == "DATA":
        _, item, price, side = rest
        return [ToyTick(received_at=received_at, item=item, price=int(price), side=side)]
    return []


class Toy:
    """The toy broker's config."""

    broker = "toy"

    def __init__(self, ws_url: str, *, name: str | None = None) -> None:
        self.ws_url = ws_url
        self.name = name


class ToySession(Session):
    broker = "toy"

    def __init__(
        self,
        name: str,
        config: Toy,
        http: aiohttp.ClientSession,
        sink: Delivery,
        options: SessionOptions,
    ) -> None:
        super().__init__(name, config.ws_url, http, sink, options)
        self.config = config
        self.decode = toy_decode

    async def _credential(self, renew: bool = False) -> str:
        return "toy-token"

    def _credential_cached(self) -> bool:
        return True

    async def _on_open(self, ws: Any, credential: str) -> None:
        await ws.send_str(f"LOGIN {credential}")

    def _subscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(f"SUB {s.type} {s.item}", [s]) for s in subs]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(f"UNSUB {s.type} {s.item}", [s]) for s in subs]

    async def _on_message(self, msg: Any, ws: Any) -> None:
        if isinstance(msg, Welcome):
            self._became_ready()
        elif isinstance(msg, Ack) and (s := self.subs.get((msg.type, msg.item))) is not None:
            self._confirmed(s)


def toy_plan(req: PlanRequest) -> Plan:
    return {req.sessions[0]: [Subscription("toy", req.type.code, it) for it in req.items]}


TOY = BrokerAdapter(
    name="toy", config=Toy, session=ToySession, plan=toy_plan, types=lambda: (TOY_TICK,)
)

# ---- the fake server ----

FRAMES = web.AppKey("frames", list[str])


async def toy_server_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[FRAMES].append("connected")
    async for msg in ws:
        word, *rest = msg.data.split()
        request.app[FRAMES].append(msg.data)
        if word == "LOGIN" and rest == ["toy-token"]:
            await ws.send_str("WELCOME")
        elif word == "SUB":
            await ws.send_str(f"OK {rest[0]} {rest[1]}")
            await ws.send_str(f"DATA {rest[0]} {rest[1]} 71200 buy")
    return ws


@pytest.fixture
async def toy_url() -> AsyncIterator[tuple[str, list[str]]]:
    app = web.Application()
    app[FRAMES] = []
    app.router.add_get("/ws", toy_server_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    register(TOY)  # the one registry line
    try:
        yield f"ws://127.0.0.1:{port}/ws", app[FRAMES]
    finally:
        unregister("toy")
        await runner.cleanup()


async def _first(feed: Feed, want: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(10):
        async for item in feed:
            if want(item):
                return item
    raise AssertionError("the feed ended")


async def test_a_registered_broker_streams_through_the_feed_into_sqlite(
    toy_url: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, frames = toy_url
    db = tmp_path / "toy.db"
    sink = SQLiteSink(f"sqlite:///{db}")
    await sink.open()
    async with Feed(Toy(url), options=FAST) as feed:  # type: ignore[arg-type]
        subs = await feed.subscribe("toy:T1", ["ABC"])
        assert [(s.broker, s.type, s.item, s.state.value) for s in subs] == [
            ("toy", "T1", "ABC", "confirmed")
        ]
        tick = await _first(feed, lambda i: isinstance(i, ToyTick))
        await sink.write([tick])
        assert feed.sessions[0].name == "toy#1"
        assert feed.stats()["sessions"]["toy#1"]["records"] == 1
    await sink.close()
    assert frames[:3] == ["connected", "LOGIN toy-token", "SUB T1 ABC"]
    assert (tick.item, tick.price, tick.side) == ("ABC", 71200, "buy")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT item, price, side FROM toy_toy_tick").fetchall()
    assert rows == [("ABC", 71200, "buy")]


async def test_type_strings_and_unknown_configs_name_the_registered_brokers(
    toy_url: tuple[str, list[str]],
) -> None:
    url, _ = toy_url
    async with Feed(Toy(url), options=FAST) as feed:  # type: ignore[arg-type]
        await feed.subscribe("T1", "XYZ")  # a bare code is looked up in every broker
        got = await _first(feed, lambda i: isinstance(i, Subscribed))
        assert (got.broker, got.type, got.item) == ("toy", "T1", "XYZ")
    with pytest.raises(TypeError, match=r"expected Kiwoom\(...\) or KIS\(...\) or Toy\(...\)"):
        Feed(object())  # type: ignore[arg-type]
