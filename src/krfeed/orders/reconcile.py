"""Reconciliation: today's orders and fills over REST, compared with the tracker, so that a fill
that happened while the socket was down is still delivered — once.

Real-time pushes are not replayed after a disconnect. After every reconnect (when the order
subscription is confirmed again), on demand, and optionally every N seconds, the
:class:`~krfeed.orders.stream.OrderStream` runs a *round* per session:

1. note the tracker's live-event clock (``OrderTracker.seq``);
2. read the orders of the day over REST, every page, paced by a token-bucket
   :class:`RateLimiter` — Kiwoom ``kt00009`` 계좌별주문체결현황 (every order: quantities, average
   fill price, 접수/거부, 정정/취소, 확인수량), ``ka10075`` 미체결 (open quantity and the exact
   cumulative fill amount of open orders) and ``ka10076`` 체결 (fees and taxes of filled
   orders), all paged with ``cont-yn``/``next-key``; KIS ``inquire-daily-ccld`` (TTTC0081R,
   mock VTTC0081R) paged with ``CTX_AREA_FK100``/``CTX_AREA_NK100`` and ``tr_cont``;
3. wait ``settle`` seconds (pushes sent before the inquiry get time to arrive), then put a
   marker into the feed (``Feed.inject``): when the consumer reaches it, everything the feed
   received before has been folded;
4. compare, order by order in order-number order, and emit what the tracker lacks as
   ``source="reconciled"`` events — the acceptance of an order never seen, one fill for the
   missing quantity (cumulative quantity and amount from the inquiry), a confirmation, a
   rejection, an exchange cancellation — through the tracker, so nothing is emitted twice.

An order that had live events during the round is *deferred*: the inquiry and the pushes may
each have seen a different moment of it. Deferred orders are looked at again ``retry_delay``
seconds later, until they are quiet. In a round during which the session dropped again, orders
may have changed between two reads with no push to tell: what the broker reports as filled,
accepted, confirmed or rejected is applied all the same (it stays true), but a cancellation
inferred from open quantities is deferred to a round without a drop.

Rounds after the first read only from the lowest order number that can still change (orders are
numbered in sequence within a day): Kiwoom ``fr_ord_no``; KIS pages newest first and stops
below it.

Limits, stated in the README: a Kiwoom order that completed entirely during a gap is seen only
through its average price (whole won), so the reconciled fill's amount can be off by less than
one won per share (its average matches the broker's); KIS notices carry no cumulative
quantity, so a notice delayed by more than ``settle`` past the inquiry would be counted twice
(the next round reports it as ``regressed``); reconciliation needs the REST API to answer —
while it is rate-limited or down, missed fills arrive late, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import aiohttp

from krfeed.auth import KISAccessToken, KiwoomToken
from krfeed.logs import get_logger
from krfeed.orders.model import (
    ORDER_NO_WIDTH,
    AccountRef,
    Action,
    OrderAnomaly,
    OrderEvent,
    action_of,
    order_no_of,
    order_type_of,
    side_of,
)
from krfeed.orders.tracker import OrderTracker, Output
from krfeed.schema.convert import KST
from krfeed.schema.enums import Side

log = get_logger("krfeed.orders.reconcile")

#: Kiwoom's REST rate is not published (error codes 1700-1702 are): 5/s is OpenAPI+'s old rule.
KIWOOM_RATE = 5.0
#: KIS: ~20 requests/s on the real server, ~2/s on the mock server (kis.md).
KIS_RATE = 20.0
KIS_MOCK_RATE = 2.0
#: Kiwoom's error codes inside return_msg ("[1700:…]"): rate limits, and invalid tokens
KIWOOM_RATE_LIMITED = re.compile(r"\b170[012]\b")
KIWOOM_BAD_TOKEN = re.compile(r"\b(?:8005|8031|8103)\b")
KIS_RATE_LIMIT_CODES = ("EGW00201",)
KIS_TOKEN_CODES = ("EGW00121", "EGW00123")


class ReconcileError(Exception):
    """An inquiry failed (the round is reported as failed and retried later)."""


@dataclass(frozen=True)
class ReconcileOptions:
    """Settings of reconciliation (times in seconds)."""

    #: run a round when the order subscription is confirmed again after a reconnect
    on_reconnect: bool = True
    #: run a round when the order subscription is first confirmed (loads the day's orders)
    initial: bool = True
    #: also run a round this often (None: never)
    interval: float | None = None
    #: wait after the inquiry before comparing, so pushes sent before it arrive first
    settle: float = 1.0
    #: look at deferred orders (or a failed round) again after this long …
    retry_delay: float = 1.0
    #: … at most this many times in a row
    max_retries: int = 20
    #: read only from the lowest order number that can still change (after the first round)
    incremental: bool = True
    #: requests per second (token bucket, per app key); None = the defaults above
    kiwoom_rate: float | None = None
    kis_rate: float | None = None
    #: Kiwoom: also read ka10076 for fees and taxes of filled orders
    kiwoom_fees: bool = True
    #: The account of each session, an :class:`AccountRef` (the broker is part of it). Keys:
    #: a broker name (``"kis"``), a session name, or ``(broker, app key)`` — never a bare app
    #: key, which both brokers may share (``--sim`` mode does). A session is only ever given an
    #: account of its own broker. A plain string value is accepted under a broker or
    #: ``(broker, app key)`` key. KIS needs "CANO-ACNT_PRDT_CD" (or the 10 digits) for its
    #: inquiry, else it is learned from the first notice; Kiwoom's is learned from ka10075.
    accounts: Mapping[str | tuple[str, str], AccountRef | str] = field(default_factory=dict)
    timeout: float = 15.0
    max_pages: int = 1000

    def __post_init__(self) -> None:
        norm: dict[str | tuple[str, str], AccountRef] = {}
        for key, value in self.accounts.items():
            broker = key[0] if isinstance(key, tuple) else key if key in ORDER_NO_WIDTH else None
            if isinstance(value, AccountRef):
                ref = value
            elif broker is None:
                raise ValueError(
                    f"the account of session {key!r} needs its broker: give "
                    f"AccountRef('kiwoom'|'kis', {value!r})"
                )
            else:
                ref = AccountRef(broker, value)
            if broker is not None and ref.broker != broker:
                raise ValueError(f"{ref} given for {key!r}: not a {broker} account")
            if ref.broker == "kis":
                split_kis_account(ref.number)  # one clear sentence for a malformed number
            norm[key] = ref
        object.__setattr__(self, "accounts", norm)

    def account_for(self, broker: str, session: str, appkey: str) -> AccountRef | None:
        """The configured account of a session: by session name, (broker, app key), then
        broker — only ever one of ``broker``."""
        for key in (session, (broker, appkey), broker):
            ref = self.accounts.get(key)
            if isinstance(ref, AccountRef) and ref.broker == broker:
                return ref
        return None


class RateLimiter:
    """Token bucket: ``rate`` requests per second, in bursts of at most ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._t = clock()
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
                self._t = now
                if self._tokens >= 1 - 1e-9:  # float rounding must not mean another wait
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
                await self._sleep(wait)

    def backoff(self, seconds: float) -> None:
        """The server said "too fast": take the bucket below empty for ``seconds``."""
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate


# ---- snapshots ----


@dataclass
class OrderSnapshot:
    """One order as the broker's inquiry shows it."""

    broker: str
    order_no: str
    action: Action = "new"
    original_order_no: str | None = None
    account: str | None = None
    code: str | None = None
    name: str | None = None
    side: Side | None = None
    order_type: str | None = None
    order_qty: int = 0
    order_price: int | None = None
    exchange: str | None = None
    filled_qty: int = 0
    #: exact cumulative fill amount when the inquiry gives it, else None
    filled_amount: int | None = None
    #: average fill price in whole won (Kiwoom kt00009 체결단가, KIS avg_prvs)
    avg_price: int | None = None
    remaining_qty: int = 0
    rejected_qty: int = 0
    confirmed: bool = False
    commission: int | None = None
    tax: int | None = None
    reason: str | None = None
    order_time: datetime | None = None
    fill_time: datetime | None = None
    consistent: bool = True

    @property
    def cancelled_qty(self) -> int:
        if self.action == "cancel":
            return 0
        return max(0, self.order_qty - self.filled_qty - self.remaining_qty - self.rejected_qty)

    def amount(self) -> int | None:
        if self.filled_amount is not None:
            return self.filled_amount
        if self.avg_price is not None:
            return self.avg_price * self.filled_qty
        return None


@dataclass
class Snapshot:
    """The orders one round read, from ``floor`` up (None: all of the day)."""

    broker: str
    account: AccountRef | None
    orders: dict[str, OrderSnapshot]
    floor: str | None = None
    requests: int = 0


def _int(v: Any) -> int:
    """Kiwoom/KIS numbers: strings, zero-padded, maybe signed ("+000001", "-20800")."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    s = str(v).strip().replace(",", "")
    if not s:
        return 0
    try:
        return int(s)
    except ValueError:
        try:
            return int(float(s))
        except ValueError:
            return 0


def _at(day: date, hms: str | None) -> datetime | None:
    s = (hms or "").replace(":", "").strip()
    if len(s) != 6 or not s.isdigit() or s == "000000":
        return None
    try:
        h, m, sec = int(s[:2]), int(s[2:4]), int(s[4:])
        return datetime(day.year, day.month, day.day, h, m, sec, tzinfo=KST)
    except ValueError:
        return None


def _code(raw: Any) -> str | None:
    s = str(raw or "").strip()
    if len(s) == 7 and s[0].isalpha() and s[1:].isdigit():
        s = s[1:]  # kt00009: prefix A (stock), J (ELW), Q (ETN)
    return s or None


_KIWOOM_STEX = {"0": "SOR", "1": "KRX", "2": "NXT"}


def kiwoom_snapshot(
    status_rows: list[dict[str, Any]],
    open_rows: list[dict[str, Any]],
    filled_rows: list[dict[str, Any]] | None = None,
    *,
    day: date | None = None,
    account: str | None = None,
) -> dict[str, OrderSnapshot]:
    """Orders from kt00009 rows (the base: every order), completed by ka10075 (open orders)
    and ka10076 (filled orders). One kt00009 row per order is what the guide's example and
    the simulator show; several rows of one order with distinct 체결번호 are read as fills."""
    day = day or datetime.now(KST).date()
    by_no: dict[str, list[dict[str, Any]]] = {}
    for row in status_rows:
        no = order_no_of("kiwoom", row.get("ord_no"))
        if no is not None:
            by_no.setdefault(no, []).append(row)
    opens = {order_no_of("kiwoom", r.get("ord_no")): r for r in open_rows}
    fills = {order_no_of("kiwoom", r.get("ord_no")): r for r in filled_rows or []}
    out: dict[str, OrderSnapshot] = {}
    for no, rows in by_no.items():
        row = rows[-1]
        distinct = {str(r.get("cntr_no") or "").strip() for r in rows}
        if len(rows) > 1 and len(distinct) == len(rows):
            filled = sum(_int(r.get("cntr_qty")) for r in rows)
            exact: int | None = sum(_int(r.get("cntr_qty")) * _int(r.get("cntr_uv")) for r in rows)
            avg: int | None = None
        else:
            filled = _int(row.get("cntr_qty"))
            exact = None
            avg = _int(row.get("cntr_uv")) if filled else None
        label = str(row.get("io_tp_nm") or "")
        action = action_of(label + str(row.get("mdfy_cncl_tp") or ""))
        s = OrderSnapshot(
            broker="kiwoom",
            order_no=no,
            action=action,
            original_order_no=order_no_of("kiwoom", row.get("orig_ord_no")),
            account=account,
            code=_code(row.get("stk_cd")),
            name=(str(row.get("stk_nm") or "").strip() or None),
            side=side_of(label),
            order_type=order_type_of("kiwoom", row.get("trde_tp")),
            order_qty=_int(row.get("ord_qty")),
            order_price=_int(row.get("ord_uv")),
            exchange=(str(row.get("dmst_stex_tp") or "").strip() or None),
            filled_qty=filled,
            filled_amount=exact,
            avg_price=avg,
            confirmed=_int(row.get("cnfm_qty")) > 0,
            fill_time=_at(day, row.get("cntr_tm")),
        )
        if "거부" in str(row.get("acpt_tp") or ""):
            s.rejected_qty = max(0, s.order_qty - s.filled_qty)
        o = opens.get(no)
        f = fills.get(no)
        for extra in (o, f):
            if extra is None:
                continue
            if _int(extra.get("cntr_qty")) > s.filled_qty:
                s.consistent = False  # the inquiries saw different moments of this order
            stt = str(extra.get("ord_stt") or "")
            if "확인" in stt:
                s.confirmed = True
            if "거부" in stt and not s.rejected_qty:
                s.rejected_qty = max(0, s.order_qty - s.filled_qty)
            if extra.get("tdy_trde_cmsn") not in (None, ""):
                s.commission = _int(extra.get("tdy_trde_cmsn"))
            if extra.get("tdy_trde_tax") not in (None, ""):
                s.tax = _int(extra.get("tdy_trde_tax"))
            if s.order_time is None:
                s.order_time = _at(day, extra.get("tm") or extra.get("ord_tm"))
            if not s.account and extra.get("acnt_no"):
                s.account = str(extra["acnt_no"]).strip() or None
        if o is not None:
            s.remaining_qty = _int(o.get("oso_qty"))
            if _int(o.get("cntr_qty")) == s.filled_qty and o.get("cntr_tot_amt") not in (None, ""):
                s.filled_amount = _int(o.get("cntr_tot_amt"))
        elif f is not None:
            s.remaining_qty = _int(f.get("oso_qty"))
        if s.action == "cancel":
            s.remaining_qty = 0
        if s.rejected_qty:
            s.remaining_qty = 0
        if s.action != "cancel" and (
            s.filled_qty + s.remaining_qty + s.rejected_qty > s.order_qty or s.filled_qty < 0
        ):
            s.consistent = False
        out[no] = s
    return out


_KIS_SIDE = {"01": Side.SELL, "02": Side.BUY}


def kis_snapshot(
    rows: list[dict[str, Any]], *, account: str | None = None
) -> dict[str, OrderSnapshot]:
    """Orders from inquire-daily-ccld ``output1`` rows (one row per order)."""
    out: dict[str, OrderSnapshot] = {}
    for row in rows:
        no = order_no_of("kis", row.get("odno"))
        if no is None:
            continue
        name = str(row.get("sll_buy_dvsn_cd_name") or "")
        if str(row.get("cncl_yn") or "").strip().upper() == "Y" or "취소" in name:
            action: Action = "cancel"
        elif "정정" in name or order_no_of("kis", row.get("orgn_odno")):
            action = "modify"
        else:
            action = "new"
        day_s = str(row.get("ord_dt") or "").strip()
        try:
            day = datetime.strptime(day_s, "%Y%m%d").date()
        except ValueError:
            day = datetime.now(KST).date()
        # KIS's field is cncl_cfrm_qty; the simulator (so far) sends cnc_cfrm_qty
        confirmed_qty = _int(row.get("cncl_cfrm_qty", row.get("cnc_cfrm_qty")))
        filled = _int(row.get("tot_ccld_qty"))
        s = OrderSnapshot(
            broker="kis",
            order_no=no,
            action=action,
            original_order_no=order_no_of("kis", row.get("orgn_odno")),
            account=account,
            code=(str(row.get("pdno") or "").strip() or None),
            name=(str(row.get("prdt_name") or "").strip() or None),
            side=_KIS_SIDE.get(str(row.get("sll_buy_dvsn_cd") or "").strip()) or side_of(name),
            order_type=order_type_of("kis", row.get("ord_dvsn_cd")),
            order_qty=_int(row.get("ord_qty")),
            order_price=_int(row.get("ord_unpr")),
            exchange=(str(row.get("excg_id_dvsn_cd") or "").strip() or None),
            filled_qty=filled,
            filled_amount=_int(row.get("tot_ccld_amt")) if filled else 0,
            avg_price=_int(row.get("avg_prvs")) if filled else None,
            remaining_qty=_int(row.get("rmn_qty")),
            rejected_qty=_int(row.get("rjct_qty")),
            confirmed=confirmed_qty > 0,
            order_time=_at(day, row.get("ord_tmd")),
        )
        if action == "cancel":
            s.remaining_qty = 0
        elif s.filled_qty + s.remaining_qty + s.rejected_qty > s.order_qty:
            s.consistent = False
        out[no] = s
    return out


# ---- REST clients ----


async def _json(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"raw": text[:200]}


class KiwoomAccountAPI:
    """Kiwoom ``POST /api/dostk/acnt``: kt00009, ka10075, ka10076 with cont-yn/next-key paging."""

    path = "/api/dostk/acnt"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_url: str,
        token: KiwoomToken,
        limiter: RateLimiter,
        *,
        timeout: float = 15.0,
        max_pages: int = 1000,
    ) -> None:
        self._http = http
        self._url = rest_url.rstrip("/") + self.path
        self.token = token
        self.limiter = limiter
        self.timeout = timeout
        self.max_pages = max_pages
        self.requests = 0

    async def _post(
        self, api_id: str, body: dict[str, Any], next_key: str | None
    ) -> tuple[dict[str, Any], bool, str]:
        renewed = False
        for attempt in range(6):
            await self.limiter.acquire()
            tok = await self.token.get()
            headers = {
                "Content-Type": "application/json;charset=UTF-8",
                "authorization": f"Bearer {tok}",
                "api-id": api_id,
            }
            if next_key is not None:
                headers["cont-yn"] = "Y"
                headers["next-key"] = next_key
            self.requests += 1
            try:
                async with self._http.post(
                    self._url,
                    json=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    status = resp.status
                    data = await _json(resp)
                    cont = resp.headers.get("cont-yn", "N").strip().upper() == "Y"
                    key = resp.headers.get("next-key", "").strip()
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                if attempt >= 2:
                    raise ReconcileError(f"{api_id}: {type(e).__name__}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            msg = str(data.get("return_msg") or "") if isinstance(data, dict) else str(data)
            if status == 429 or KIWOOM_RATE_LIMITED.search(msg):
                self.limiter.backoff(0.5 * 2**attempt)
                continue
            if not isinstance(data, dict):
                raise ReconcileError(f"{api_id}: unexpected answer (HTTP {status})")
            rc = data.get("return_code", 0)
            if rc in (0, "0"):
                return data, cont and bool(key), key
            if KIWOOM_BAD_TOKEN.search(msg) and not renewed:
                renewed = True
                await self.token.renew(tok)
                continue
            raise ReconcileError(f"{api_id}: return_code {rc}: {msg.strip()}")
        raise ReconcileError(f"{api_id}: still rate-limited after retries")

    async def pages(
        self,
        api_id: str,
        body: dict[str, Any],
        list_key: str,
        stop: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Every row of ``list_key`` over all pages (until ``stop(page)`` says enough)."""
        rows: list[dict[str, Any]] = []
        key: str | None = None
        for _ in range(self.max_pages):
            data, more, key = await self._post(api_id, body, key)
            page = [r for r in data.get(list_key) or [] if isinstance(r, dict)]
            rows.extend(page)
            if not more or (stop is not None and stop(page)):
                return rows
        raise ReconcileError(f"{api_id}: more than {self.max_pages} pages")

    async def order_status(self, *, from_order_no: str = "") -> list[dict[str, Any]]:
        """kt00009 계좌별주문체결현황 of today: every order from ``from_order_no`` up."""
        body = {
            "ord_dt": "",
            "stk_bond_tp": "0",
            "mrkt_tp": "0",
            "sell_tp": "0",
            "qry_tp": "0",
            "stk_cd": "",
            "fr_ord_no": from_order_no,
            "dmst_stex_tp": "%",
        }
        return await self.pages("kt00009", body, "acnt_ord_cntr_prst_array")

    async def unfilled(self) -> list[dict[str, Any]]:
        """ka10075 미체결: every open order (stex_tp 0 통합 — UNVERIFIED that it lists KRX and
        NXT orders alike; the guide only names the codes)."""
        body = {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"}
        return await self.pages("ka10075", body, "oso")

    async def filled(self, *, down_to: str | None = None) -> list[dict[str, Any]]:
        """ka10076 체결 (newest first), stopping below order number ``down_to``."""
        body = {"stk_cd": "", "qry_tp": "0", "sell_tp": "0", "ord_no": "", "stex_tp": "0"}

        def below(page: list[dict[str, Any]]) -> bool:
            if down_to is None or not page:
                return False
            last = order_no_of("kiwoom", page[-1].get("ord_no"))
            return last is not None and last < down_to

        return await self.pages("ka10076", body, "cntr", below)


class KISAccountAPI:
    """KIS ``GET /uapi/domestic-stock/v1/trading/inquire-daily-ccld`` with CTX_AREA paging."""

    path = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_url: str,
        appkey: str,
        appsecret: str,
        token: KISAccessToken,
        limiter: RateLimiter,
        *,
        mock: bool = False,
        custtype: str = "P",
        timeout: float = 15.0,
        max_pages: int = 1000,
    ) -> None:
        self._http = http
        self._url = rest_url.rstrip("/") + self.path
        self._appkey = appkey
        self._secret = appsecret
        self.token = token
        self.limiter = limiter
        self.tr_id = "VTTC0081R" if mock else "TTTC0081R"
        self.custtype = custtype
        self.timeout = timeout
        self.max_pages = max_pages
        self.requests = 0

    async def _get(self, params: dict[str, str], cont: bool) -> tuple[dict[str, Any], bool]:
        renewed = False
        for attempt in range(6):
            await self.limiter.acquire()
            tok = await self.token.get()
            headers = {
                "content-type": "application/json; charset=utf-8",
                "authorization": f"Bearer {tok}",
                "appkey": self._appkey,
                "appsecret": self._secret,
                "tr_id": self.tr_id,
                "custtype": self.custtype,
                "tr_cont": "N" if cont else "",
            }
            self.requests += 1
            try:
                async with self._http.get(
                    self._url,
                    params=params,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    status = resp.status
                    data = await _json(resp)
                    more = resp.headers.get("tr_cont", "").strip().upper() in ("M", "F")
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                if attempt >= 2:
                    raise ReconcileError(f"inquire-daily-ccld: {type(e).__name__}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if not isinstance(data, dict):
                raise ReconcileError(f"inquire-daily-ccld: unexpected answer (HTTP {status})")
            code = str(data.get("msg_cd") or data.get("error_code") or "")
            if status == 429 or code in KIS_RATE_LIMIT_CODES:
                self.limiter.backoff(0.5 * 2**attempt)
                continue
            if code in KIS_TOKEN_CODES and not renewed:
                renewed = True
                await self.token.renew(tok)
                continue
            if status == 200 and str(data.get("rt_cd", "")) == "0":
                return data, more
            msg = data.get("msg1") or data.get("error_description") or ""
            raise ReconcileError(f"inquire-daily-ccld: HTTP {status} {code} {msg}".strip())
        raise ReconcileError("inquire-daily-ccld: still rate-limited after retries")

    async def daily_orders(
        self, cano: str, product: str, *, day: date | None = None, down_to: str | None = None
    ) -> list[dict[str, Any]]:
        """``output1`` rows of today (newest first), stopping below order number ``down_to``."""
        d = (day or datetime.now(KST).date()).strftime("%Y%m%d")
        params = {
            "CANO": cano,
            "ACNT_PRDT_CD": product,
            "INQR_STRT_DT": d,
            "INQR_END_DT": d,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "EXCG_ID_DVSN_CD": "ALL",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        }
        rows: list[dict[str, Any]] = []
        cont = False
        for _ in range(self.max_pages):
            data, more = await self._get(params, cont)
            page = [r for r in data.get("output1") or [] if isinstance(r, dict)]
            rows.extend(page)
            if down_to is not None and page:
                last = order_no_of("kis", page[-1].get("odno"))
                if last is not None and last < down_to:
                    return rows
            if not more:
                return rows
            params["CTX_AREA_FK100"] = str(data.get("ctx_area_fk100") or "")
            params["CTX_AREA_NK100"] = str(data.get("ctx_area_nk100") or "")
            cont = True
        raise ReconcileError(f"inquire-daily-ccld: more than {self.max_pages} pages")


def split_kis_account(account: str) -> tuple[str, str]:
    """ "12345678-01" or "1234567801" -> ("12345678", "01")."""
    s = account.strip().replace("-", "")
    if len(s) != 10 or not s.isdigit():
        raise ValueError(f"a KIS account is CANO (8 digits) and product code (2), not {account!r}")
    return s[:8], s[8:]


# ---- comparing ----


@dataclass
class RoundResult:
    outputs: list[Output]
    deferred: list[str]
    events: int = 0
    fills: int = 0
    fill_qty: int = 0


def _no_int(no: str) -> int:
    return int(no) if no.isdigit() else 0


def compare(
    snapshot: Snapshot,
    tracker: OrderTracker,
    since_seq: int,
    account: AccountRef | None = None,
    *,
    infer_cancels: bool = True,
) -> RoundResult:
    """Apply to ``tracker`` what ``snapshot`` shows and it lacks; return what was emitted.

    Orders with a live event after ``since_seq`` (the tracker clock when the inquiry started),
    and orders the inquiries saw inconsistently, are deferred; so are orders that would get a
    cancellation inferred from open quantities when ``infer_cancels`` is false.
    """
    broker = snapshot.broker
    ref = account or snapshot.account
    if ref is not None and ref.broker != broker:
        raise ValueError(f"{ref} cannot be compared with a {broker} inquiry")
    number = ref.number if ref is not None else None
    orders = snapshot.orders
    known = {no: tracker.get(broker, no, number) for no in orders}
    # requests this round will introduce: their quantity is not yet moved off the original
    pending: dict[str, int] = {}
    for no, s in orders.items():
        if s.action != "new" and s.original_order_no and known[no] is None and s.consistent:
            pending[s.original_order_no] = pending.get(s.original_order_no, 0) + s.order_qty
    res = RoundResult([], [])
    for no in sorted(orders, key=_no_int):
        s = orders[no]
        st = tracker.get(broker, no, number)
        if not s.consistent or (st is not None and st.last_live_seq > since_seq):
            res.deferred.append(no)
            continue
        events, anomalies = _events_for(s, st, pending.get(no, 0), number)
        if not infer_cancels and any(
            e.kind == "cancelled" and e.action != "cancel" for e in events
        ):
            events = [e for e in events if not (e.kind == "cancelled" and e.action != "cancel")]
            res.deferred.append(no)
        res.outputs.extend(anomalies)
        for ev in events:
            outs = tracker.apply(ev)
            res.outputs.extend(outs)
            for o in outs:
                if isinstance(o, OrderEvent):
                    res.events += 1
                    if o.kind == "filled":
                        res.fills += 1
                        res.fill_qty += o.fill_qty or 0
    return res


def _events_for(
    s: OrderSnapshot, st: Any, pending_move: int, account: str | None
) -> tuple[list[OrderEvent], list[OrderAnomaly]]:
    base: dict[str, Any] = {
        "broker": s.broker,
        "account": account or s.account or (st.account if st is not None else None),
        "order_no": s.order_no,
        "original_order_no": s.original_order_no,
        "code": s.code,
        "name": s.name,
        "side": s.side,
        "action": s.action,
        "order_type": s.order_type,
        "order_qty": s.order_qty,
        "order_price": s.order_price,
        "exchange": s.exchange,
        "commission": s.commission,
        "tax": s.tax,
        "source": "reconciled",
    }
    events: list[OrderEvent] = []
    anomalies: list[OrderAnomaly] = []
    if st is None:
        events.append(OrderEvent(kind="accepted", time=s.order_time, **base))
        filled, amount, cancelled, rejected, confirmed = 0, 0, 0, 0, False
    else:
        filled, amount = st.filled_qty, st.filled_amount
        cancelled, rejected, confirmed = st.cancelled_qty, st.rejected_qty, st.confirmed
    if s.action == "cancel":
        if s.rejected_qty and not rejected:
            events.append(OrderEvent(kind="rejected", reason=s.reason, **base))
        elif s.confirmed and not confirmed:
            events.append(OrderEvent(kind="cancelled", time=s.fill_time, **base))
        return events, anomalies
    if s.action == "modify" and not confirmed and (s.confirmed or s.filled_qty > 0):
        events.append(OrderEvent(kind="modified", **base))
    if s.filled_qty > filled:
        delta = s.filled_qty - filled
        total = s.amount()
        if total is None or total < amount:
            total = amount + delta * (s.avg_price or s.order_price or 0)
        events.append(
            OrderEvent(
                kind="filled",
                fill_qty=delta,
                fill_price=round((total - amount) / delta),
                filled_qty=s.filled_qty,
                filled_amount=total,
                time=s.fill_time,
                **base,
            )
        )
    elif s.filled_qty < filled:
        anomalies.append(
            OrderAnomaly(
                broker=s.broker,
                account=base["account"],
                order_no=s.order_no,
                problem="regressed",
                message=f"the tracker has {filled} filled, the broker's inquiry {s.filled_qty}",
            )
        )
    if s.rejected_qty > rejected:
        events.append(
            OrderEvent(
                kind="rejected",
                remaining_qty=s.remaining_qty + pending_move,
                reason=s.reason,
                **base,
            )
        )
    elif s.cancelled_qty - pending_move > cancelled:
        events.append(
            OrderEvent(kind="cancelled", remaining_qty=s.remaining_qty + pending_move, **base)
        )
    return events, anomalies


# ---- one session's reconciler ----


class SessionReconciler:
    """Reads the orders of one session's account (Kiwoom app key / KIS account)."""

    def __init__(
        self,
        broker: str,
        session: str,
        api: KiwoomAccountAPI | KISAccountAPI,
        *,
        account: AccountRef | None = None,
        fees: bool = True,
    ) -> None:
        if account is not None and account.broker != broker:
            raise ValueError(f"{account} given to a {broker} session")
        self.broker = broker
        self.session = session
        self.api = api
        self.account = account
        self.fees = fees
        #: (configured, the broker's) when an inquiry named another account than configured
        self.conflict: tuple[AccountRef, AccountRef] | None = None
        # round bookkeeping (driven by OrderStream)
        self.epoch = 0
        self.running = False
        self.again: str | None = None
        self.retries = 0
        self.listed_max: str | None = None
        self.deferred: set[str] = set()
        self.ready = False
        self.gap = False
        self.waiters: list[asyncio.Future[None]] = []
        self.task: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        self.rounds = 0

    def __repr__(self) -> str:
        return f"SessionReconciler({self.broker} {self.session})"

    async def snapshot(self, floor: str | None) -> Snapshot:
        """Every order of today from order number ``floor`` up (None: all)."""
        before = self.api.requests
        if isinstance(self.api, KiwoomAccountAPI):
            # open orders first: an order that fills or ends between the two reads then shows
            # more filled + open than ordered (inconsistent, deferred) instead of a cancel
            opens = await self.api.unfilled()
            status = await self.api.order_status(from_order_no=floor or "")
            filled = await self.api.filled(down_to=floor) if self.fees else []
            # The token answers for its own account: what ka10075 names is the truth.
            seen = next(
                (ref for r in opens if (ref := AccountRef.of("kiwoom", r.get("acnt_no")))), None
            )
            if seen is not None and seen != self.account:
                if self.account is not None:
                    self.conflict = (self.account, seen)
                self.account = seen
            number = self.account.number if self.account is not None else None
            orders = kiwoom_snapshot(status, opens, filled, account=number)
        else:
            if self.account is None:
                raise ReconcileError(
                    f"{self.session}: the KIS account is unknown: give it as "
                    "ReconcileOptions(accounts={'kis': 'CANO-PRDT'}) or wait for a notice"
                )
            cano, product = split_kis_account(self.account.number)
            rows = await self.api.daily_orders(cano, product, down_to=floor)
            orders = kis_snapshot(rows, account=cano + product)
        if floor is not None:
            orders = {k: v for k, v in orders.items() if k >= floor}
        return Snapshot(
            self.broker, self.account, orders, floor, requests=self.api.requests - before
        )

    def floor(self, tracker: OrderTracker) -> str | None:
        """The lowest order number that can still change (None before the first listing)."""
        if self.listed_max is None:
            return None
        cands = [_no_int(self.listed_max) + 1]
        for st in tracker.orders(self.broker):
            if self.account and st.account not in (None, self.account.number):
                continue
            if not st.final:
                cands.append(_no_int(st.order_no))
        cands.extend(_no_int(n) for n in self.deferred)
        width = ORDER_NO_WIDTH.get(self.broker, 7)
        return str(min(cands)).zfill(width)

    def cancel(self) -> None:
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for w in self.waiters:
            if not w.done():
                w.cancel()
        self.waiters.clear()

    async def aclose(self) -> None:
        self.cancel()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


__all__ = [
    "KIS_MOCK_RATE",
    "KIS_RATE",
    "KIWOOM_RATE",
    "KISAccountAPI",
    "KiwoomAccountAPI",
    "OrderSnapshot",
    "RateLimiter",
    "ReconcileError",
    "ReconcileOptions",
    "RoundResult",
    "SessionReconciler",
    "Snapshot",
    "compare",
    "kis_snapshot",
    "kiwoom_snapshot",
    "split_kis_account",
]
