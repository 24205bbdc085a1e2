"""The simulator's saved condition searches (조건검색식): CNSRLST, CNSRREQ (one-off, paged, and
real-time), CNSRCLR, and the type 02 pushes.

Each saved condition is a predicate on the market model's instruments, evaluated over the
model's universe. A one-off search answers the instruments that match now; a real-time one
answers them too and then, after every market tick, pushes a 02 entry for each instrument that
entered (``843`` ``I``) or left (``D``) the condition since the last push to that connection,
so entries and exits follow the prices the simulator sends.

Shapes follow Kiwoom's guide (ka10171–ka10174 in ``kiwoom_api_spec_subset.json``): the list
as ``[[seq, name], …]``, one-off rows keyed by FID with 9-character zero-padded numbers and an
``A``-prefixed ``9001``, the real-time answer as ``[{"jmcode": "A005930"}, …]``, and 02 values
841/9001/843/20/907. The guide does not give the error replies: those here (``return_code`` 1
and a Korean sentence) are UNVERIFIED, as is the limit of 10 real-time conditions per
connection (third-party reports; see ``protocols/kiwoom.md``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from krfeed.schema.convert import KST
from krfeed.schema.enums import Side
from krfeed.sim.market import UNIVERSE, Instrument, Market

if TYPE_CHECKING:
    from krfeed.sim.config import SimConfig
    from krfeed.sim.connections import Conn

#: Real-time condition searches one connection may hold (UNVERIFIED: "10 per login").
MAX_REALTIME = 10
UNKNOWN_SEQ = "조건검색식이 존재하지 않습니다"
TOO_MANY = "실시간 조건검색은 최대 {}개까지 요청 가능합니다"
LIST_FIRST = "조건검색 목록조회(CNSRLST)를 먼저 요청하십시오"
BAD_TYPE = "조회타입(search_type)이 올바르지 않습니다"


def _rate_1000(inst: Instrument) -> int:
    """등락율 in thousandths of a percent: ``1500`` is +1.50 % (ka10172 field 12)."""
    if not inst.prev_close:
        return 0
    v = Decimal(inst.price - inst.prev_close) * 100_000 / Decimal(inst.prev_close)
    return int(v.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def change_pct(inst: Instrument) -> Decimal:
    """Today's change in percent (exact, for the predicates)."""
    if not inst.prev_close:
        return Decimal(0)
    return Decimal(inst.price - inst.prev_close) * 100 / Decimal(inst.prev_close)


def program_net_buy_amount(inst: Instrument) -> int:
    """Program net buying today in 백만원, as the 0w/H0STPGM0 records carry it."""
    return inst.pgm_buy_value // 1_000_000 - inst.pgm_sell_value // 1_000_000


class BookHost(Protocol):
    """What condition search uses of the simulator (its connections, market and config)."""

    @property
    def conns(self) -> dict[int, Conn]: ...

    @property
    def market(self) -> Market: ...

    @property
    def config(self) -> SimConfig: ...

    @property
    def condition_book(self) -> ConditionBook: ...


@dataclass(frozen=True)
class SavedCondition:
    """One saved condition: its seq, its name as 영웅문 would show it, and its predicate."""

    seq: str
    name: str
    test: Callable[[Instrument], bool]


def default_conditions() -> list[SavedCondition]:
    """The conditions ``krfeed sim`` offers (seq 0–4)."""
    return [
        SavedCondition("0", "당일 3% 이상 상승", lambda i: change_pct(i) > 3),
        SavedCondition("1", "거래량 1000주 이상", lambda i: i.volume >= 1000),
        SavedCondition(
            "2", "프로그램 순매수 500만원 초과", lambda i: program_net_buy_amount(i) > 5
        ),
        SavedCondition("3", "전일 대비 상승", lambda i: i.price > i.prev_close),
        SavedCondition("4", "당일 1% 이상 하락", lambda i: change_pct(i) <= -1),
    ]


@dataclass
class Push:
    """A 02 entry the simulator sent, with the state it was decided on (for tests)."""

    conn: int
    seq: str
    code: str
    event: str  # "I" or "D"
    time: datetime
    price: int
    prev_close: int
    volume: int
    program_net_buy_amount: int
    values: dict[str, str]


@dataclass
class _ConnState:
    listed: bool = False
    #: seq -> the codes last reported to this connection (its view of the condition)
    watches: dict[str, set[str]] = field(default_factory=dict)


class ConditionBook:
    """The saved conditions, who watches which, and what was pushed."""

    def __init__(
        self,
        conditions: Sequence[SavedCondition] | None = None,
        universe: Sequence[str] | None = None,
        max_realtime: int = MAX_REALTIME,
    ) -> None:
        self.conditions = {c.seq: c for c in (conditions or default_conditions())}
        self.universe = list(universe or UNIVERSE)
        self.max_realtime = max_realtime
        self._conns: dict[int, _ConnState] = {}
        #: every 02 entry sent, oldest first (bounded)
        self.pushes: deque[Push] = deque(maxlen=100_000)

    # ---- evaluation ----

    def matches(self, market: Market, seq: str) -> list[str]:
        """The codes matching condition ``seq`` now, in universe order."""
        test = self.conditions[seq].test
        return [c for c in self.universe if test(market.instrument(c))]

    def watching(self) -> bool:
        """Any connection holds a real-time condition (the universe must move)."""
        return any(s.watches for s in self._conns.values())

    def codes(self) -> list[str]:
        """Instruments the market loop must step for the conditions."""
        return self.universe if self.watching() else []

    def reported(self, conn: Conn | int, seq: str) -> set[str]:
        """What the simulator last told ``conn`` about ``seq`` (empty when not watched)."""
        cid = conn if isinstance(conn, int) else conn.id
        st = self._conns.get(cid)
        return set(st.watches.get(seq, set())) if st else set()

    def tick(
        self, sim: BookHost, now: datetime, pending: dict[Conn, list[tuple[str, str, Any]]]
    ) -> None:
        """After a market tick: the 02 entries for every watched condition that changed."""
        live = {c.id: c for c in sim.conns.values() if not c.closed}
        for cid in [cid for cid in self._conns if cid not in live]:
            del self._conns[cid]
        current: dict[str, list[str]] = {}
        for cid, st in self._conns.items():
            conn = live[cid]
            if not conn.logged_in:
                continue
            for seq in sorted(st.watches):
                if seq not in current:
                    current[seq] = self.matches(sim.market, seq)
                now_set = current[seq]
                before = st.watches[seq]
                after = set(now_set)
                for code in self.universe:
                    if (code in after) == (code in before):
                        continue
                    event = "I" if code in after else "D"
                    vals = self._push(sim.market, cid, seq, code, event, now)
                    pending[conn].append(("02", code, vals))
                st.watches[seq] = after

    def _push(
        self, market: Market, cid: int, seq: str, code: str, event: str, now: datetime
    ) -> dict[str, str]:
        inst = market.instrument(code)
        # ka10173 example: {"841": "4", "9001": "005930", "843": "I", "20": "152028",
        # "907": "2"}; 907 (매도/수 구분) is undocumented for 02: the side of the last trade.
        side = "1" if inst.last_side is Side.SELL else "2"
        vals = {
            "841": seq,
            "9001": code,
            "843": event,
            "20": now.astimezone(KST).strftime("%H%M%S"),
            "907": side,
        }
        self.pushes.append(
            Push(
                cid,
                seq,
                code,
                event,
                now,
                inst.price,
                inst.prev_close,
                inst.volume,
                program_net_buy_amount(inst),
                vals,
            )
        )
        return vals

    # ---- the WebSocket requests ----

    def on_list(self, sim: BookHost, conn: Conn, msg: dict[str, Any]) -> None:
        self._conns.setdefault(conn.id, _ConnState()).listed = True
        conn.control(
            {
                "trnm": "CNSRLST",
                "return_code": 0,
                "return_msg": "",
                "data": [[c.seq, c.name] for c in self.conditions.values()],
            },
            "CNSRLST",
        )

    def on_request(self, sim: BookHost, conn: Conn, msg: dict[str, Any]) -> None:
        seq = str(msg.get("seq") or "").strip()

        def fail(why: str) -> None:
            conn.control(
                {"trnm": "CNSRREQ", "seq": seq, "return_code": 1, "return_msg": why}, "CNSRREQ"
            )

        if not seq:
            fail("필수 입력 값에 값이 존재하지 않습니다. 필수입력 파라미터=seq")
            return
        search_type = str(msg.get("search_type", "")).strip()
        if search_type not in ("0", "1"):
            fail(BAD_TYPE)
            return
        if seq not in self.conditions:
            fail(UNKNOWN_SEQ)
            return
        st = self._conns.setdefault(conn.id, _ConnState())
        if search_type == "1":
            if not st.listed:
                fail(LIST_FIRST)
                return
            if seq not in st.watches and len(st.watches) >= self.max_realtime:
                fail(TOO_MANY.format(self.max_realtime))
                return
            codes = self.matches(sim.market, seq)
            st.watches[seq] = set(codes)
            conn.control(
                {
                    "trnm": "CNSRREQ",
                    "seq": seq,
                    "return_code": 0,
                    "return_msg": "",
                    "data": [{"jmcode": "A" + c} for c in codes],
                },
                "CNSRREQ",
            )
            return
        codes = self.matches(sim.market, seq)
        size = max(1, sim.config.page_size)
        start = 0
        if str(msg.get("cont_yn", "N")).strip().upper() == "Y":
            key = str(msg.get("next_key") or "").strip()
            start = int(key) if key.isdigit() else 0
        page = codes[start : start + size]
        more = start + size < len(codes)
        conn.control(
            {
                "trnm": "CNSRREQ",
                "seq": seq,
                "cont_yn": "Y" if more else "N",
                "next_key": str(start + size) if more else "",
                "return_code": 0,
                "return_msg": "",
                "data": [search_row(sim.market.instrument(c)) for c in page],
            },
            "CNSRREQ",
        )

    def on_clear(self, sim: BookHost, conn: Conn, msg: dict[str, Any]) -> None:
        seq = str(msg.get("seq") or "").strip()
        st = self._conns.get(conn.id)
        if st is not None:
            st.watches.pop(seq, None)
        conn.control({"trnm": "CNSRCLR", "seq": seq, "return_code": 0, "return_msg": ""}, "CNSRCLR")


_SIGN = {"up": "2", "down": "5", "flat": "3", "limit_up": "1", "limit_down": "4"}


def search_row(inst: Instrument) -> dict[str, str]:
    """One ka10172 result row: 9-character zero-padded numbers, signed where they can be
    negative (``-00000100``), 등락율 in thousandths of a percent."""
    chg = inst.price - inst.prev_close

    def n9(v: int) -> str:
        return f"{v:09d}"

    return {
        "9001": "A" + inst.code,
        "302": inst.name,
        "10": n9(inst.price),
        "25": _SIGN[inst.sign_of(inst.price).value],
        "11": n9(chg),
        "12": n9(_rate_1000(inst)),
        "13": n9(inst.volume),
        "16": n9(inst.open or inst.price),
        "17": n9(inst.high or inst.price),
        "18": n9(inst.low or inst.price),
    }


def set_price(market: Market, code: str, price: int, now: datetime | None = None) -> None:
    """Trade ``code`` once at ``price`` (one share): a test moves a stock into or out of a
    condition this way, and the records the simulator sends show the same price."""
    inst = market.instrument(code)
    side = Side.BUY if price >= inst.price else Side.SELL
    inst._trade(price, 1, side, now or datetime.now(KST))


async def admin(sim: BookHost, request: web.Request) -> web.StreamResponse:
    """GET /_sim/conditions: the saved conditions, what each matches now (the simulator's own
    evaluation) and the latest 02 entries sent (``?last=N``, default 1000)."""
    book = sim.condition_book
    try:
        last = max(0, int(request.query.get("last", "1000")))
    except ValueError:
        return web.json_response({"ok": False, "error": "last must be a number"}, status=400)
    pushes = list(book.pushes)[-last:] if last else []
    return web.json_response(
        {
            "conditions": [[c.seq, c.name] for c in book.conditions.values()],
            "matches": {seq: book.matches(sim.market, seq) for seq in book.conditions},
            "pushes": [
                {
                    "conn": p.conn,
                    "seq": p.seq,
                    "code": p.code,
                    "event": p.event,
                    "time": p.values["20"],
                    "price": p.price,
                    "prev_close": p.prev_close,
                    "volume": p.volume,
                    "program_net_buy_amount": p.program_net_buy_amount,
                }
                for p in pushes
            ],
        }
    )
