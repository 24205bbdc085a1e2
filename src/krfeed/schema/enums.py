"""Coded values the brokers send, as enums (the Korean meaning is in each member's doc)."""

from __future__ import annotations

from enum import Enum, StrEnum


class Direction(StrEnum):
    """Direction of a signed price versus the reference price (the sign on Kiwoom prices)."""

    UP = "up"
    DOWN = "down"
    FLAT = "flat"


class Side(StrEnum):
    """Buy or sell: 매수 / 매도 (also the aggressor of a trade tick)."""

    BUY = "buy"
    SELL = "sell"


class PriceSign(StrEnum):
    """전일대비기호 (Kiwoom 25, KIS *_SIGN): 1 상한, 2 상승, 3 보합, 4 하한, 5 하락."""

    LIMIT_UP = "limit_up"
    UP = "up"
    FLAT = "flat"
    LIMIT_DOWN = "limit_down"
    DOWN = "down"


class OrderStatus(StrEnum):
    """Kiwoom 913 주문상태."""

    ACCEPTED = "accepted"  # 접수
    FILLED = "filled"  # 체결
    CONFIRMED = "confirmed"  # 확인 (modify/cancel confirmed)
    CANCELLED = "cancelled"  # 취소
    REJECTED = "rejected"  # 거부


class MarketSession(StrEnum):
    """Kiwoom 290 장구분: 1 장전시간외, 2 장중, 3 장후시간외; KIS MARKET_CLS_CODE also
    5 종가단일가 (closing auction)."""

    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    POST_MARKET = "post_market"
    CLOSING_AUCTION = "closing_auction"


class Exchange(StrEnum):
    """Kiwoom 2134 거래소구분: 0 통합(SOR), 1 KRX, 2 NXT."""

    SOR = "sor"
    KRX = "krx"
    NXT = "nxt"


class NoticeKind(StrEnum):
    """KIS CNTG_YN 체결여부: 1 order/modify/cancel/reject acknowledgement, 2 fill."""

    ACK = "ack"
    FILL = "fill"


class Correction(StrEnum):
    """KIS RCTF_CLS 정정구분: 0 정상, 1 정정, 2 취소."""

    NORMAL = "normal"
    MODIFY = "modify"
    CANCEL = "cancel"


class ConditionEvent(StrEnum):
    """Kiwoom 843 (type 02): I 편입 (entered the condition), D 이탈 (left it)."""

    ENTER = "enter"
    EXIT = "exit"


# enum kind name -> (enum class, wire value -> member). Unknown wire values are kept as str.
ENUM_KINDS: dict[str, tuple[type[Enum], dict[str, Enum]]] = {
    "sign": (
        PriceSign,
        {
            "1": PriceSign.LIMIT_UP,
            "2": PriceSign.UP,
            "3": PriceSign.FLAT,
            "4": PriceSign.LIMIT_DOWN,
            "5": PriceSign.DOWN,
        },
    ),
    "order_status": (
        OrderStatus,
        {
            "접수": OrderStatus.ACCEPTED,
            "체결": OrderStatus.FILLED,
            "확인": OrderStatus.CONFIRMED,
            "취소": OrderStatus.CANCELLED,
            "거부": OrderStatus.REJECTED,
        },
    ),
    "side12": (Side, {"1": Side.SELL, "2": Side.BUY}),
    "side0102": (Side, {"01": Side.SELL, "02": Side.BUY}),
    "session290": (
        MarketSession,
        {"1": MarketSession.PRE_MARKET, "2": MarketSession.REGULAR, "3": MarketSession.POST_MARKET},
    ),
    "exchange2134": (Exchange, {"0": Exchange.SOR, "1": Exchange.KRX, "2": Exchange.NXT}),
    # Kiwoom 9081: the table's example is a code ("1"); the live wire sends the name ("KRX").
    # Both forms are understood; anything else is kept as sent.
    "exchange9081": (
        Exchange,
        {"1": Exchange.KRX, "2": Exchange.NXT, "KRX": Exchange.KRX, "NXT": Exchange.NXT},
    ),
    # KIS MARKET_CLS_CODE (appended 2026-09-14): 1 장전, 2 장중, 3 장후, 5 종가단일가
    "market_cls": (
        MarketSession,
        {
            "1": MarketSession.PRE_MARKET,
            "2": MarketSession.REGULAR,
            "3": MarketSession.POST_MARKET,
            "5": MarketSession.CLOSING_AUCTION,
        },
    ),
    "cntg_yn": (NoticeKind, {"1": NoticeKind.ACK, "2": NoticeKind.FILL}),
    "rctf": (Correction, {"0": Correction.NORMAL, "1": Correction.MODIFY, "2": Correction.CANCEL}),
    "condition843": (ConditionEvent, {"I": ConditionEvent.ENTER, "D": ConditionEvent.EXIT}),
}
