"""A session's settings (:class:`SessionOptions`) and counters (:class:`SessionStats`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time as dtime


@dataclass
class SessionOptions:
    """Timing and limits of a session; every UNVERIFIED broker behaviour is a setting here."""

    backoff_base: float = 0.5
    #: The cap of the slow path: (re-)authentication, refusals (a LOGIN or approval key
    #: refused, an app key in use, "try again later"), a connection that ended before it
    #: proved healthy, and every retry outside market hours.
    backoff_cap: float = 30.0
    #: The cap of the quick path, within market hours: a healthy connection was lost, or the
    #: broker could not be reached, while the cached token / approval key is still valid, so
    #: only the socket is retried (full jitter, from backoff_base up to this, never above
    #: backoff_cap). Data flows again within about this long after the broker is back.
    #: None: always the slow path.
    reconnect_cap: float | None = 2.0
    connect_timeout: float = 10.0
    login_timeout: float = 10.0
    #: No frame at all (not even a heartbeat) for this long: the socket is half-open. This
    #: fixed limit applies until the session has seen two heartbeats on one connection, and
    #: is the ceiling afterwards. (KIS sends PINGPONG about every 10 s; Kiwoom's PING interval
    #: is undocumented.)
    idle_timeout: float = 90.0
    #: Once the heartbeat cadence is learned (the median of the last intervals between the
    #: broker's PING/PINGPONG frames), give up after this many heartbeats without any frame:
    #: the limit is clamp(idle_heartbeats x interval, idle_floor, idle_timeout). 0 disables
    #: learning (idle_timeout alone).
    idle_heartbeats: float = 3.0
    #: The least the learned limit can be, so that heartbeats in a burst do not make it tiny.
    idle_floor: float = 3.0
    #: Subscribed market data silent this long while heartbeats continue: reconnect.
    #: Each stall in a row without data in between doubles it (up to an hour), so a holiday
    #: or a halted market costs a few reconnects, not one every few minutes. None disables it.
    stall_timeout: float | None = 120.0
    #: The watchdog only runs within these KST hours on weekdays (None: always).
    market_hours: tuple[dtime, dtime] | None = (dtime(8, 0), dtime(20, 0))
    #: A session counts as healthy (backoff resets) after receiving data, or after this long
    #: logged in with its subscriptions confirmed.
    healthy_after: float = 10.0
    #: Seconds between (un)subscribe frames on one connection: 20 a second (UNVERIFIED: KIS
    #: documents 20 REST calls/s per real account and warns that bursts of subscribes can get
    #: an app key blocked; [session] subscribe_interval).
    subscribe_interval: float = 0.05
    #: Seconds between the first connections of a feed's sessions of one broker, so that 66+
    #: app keys do not ask for approval keys / tokens all at once (10 a second, below KIS's 20
    #: REST calls/s; [session] connect_interval). Reconnects are spread by their jitter.
    connect_interval: float = 0.1
    #: Seconds to wait for the broker's reply to a subscribe or unsubscribe frame once it
    #: went out (replies normally take milliseconds; [session] reply_timeout). With neither
    #: reply nor data by then, the frame is sent once more (KIS answers a repeated subscribe
    #: OPSP0002 "already subscribed", which confirms it; Kiwoom's REG with refresh 1 adds to
    #: the group's registrations, and its answer to a repeated one is UNVERIFIED: return_code
    #: 0 expected); after another reply_timeout a subscribe fails "no reply from
    #: the broker within 10 s (sent twice)" (a SubscribeFailed event; a late reply or its data
    #: still confirms it, and the next connection replays it) and an unsubscribe counts as
    #: done (Unsubscribed with that reason). None: wait as long as the connection lasts.
    reply_timeout: float | None = 10.0
    #: Consecutive failed logins / auth errors before a session gives up.
    max_auth_failures: int = 5
    #: KIS OPSP8996 (app key in use) within this long after a working connection was lost is
    #: retried with backoff: the broker may still hold that connection (half-open). Met on a
    #: first connection, or later than this, it is fatal.
    in_use_retry_for: float = 120.0


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    records: int = 0
    decode_errors: int = 0
    layout_notices: int = 0  # types seen in a longer layout than krfeed knows
    #: frames that were not valid UTF-8 (decoded leniently; see krfeed.protocol.text)
    invalid_utf8: int = 0
    #: of those, frames that were valid CP949 as a whole
    cp949: int = 0
    pings: int = 0
    stalls: int = 0
    #: (un)subscribe frames not answered within reply_timeout (each sent again once, then
    #: given up on)
    reply_timeouts: int = 0
    #: the learned heartbeat interval (None until two heartbeats on one connection)
    heartbeat_interval: float | None = None
    last_frame_at: float = 0.0
    last_data_at: float = 0.0
    state: str = "idle"
    #: why the last connection ended or could not be made ("" until then)
    last_error: str = ""
