"""Base classes of the typed records (one generated class per real-time type)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import msgspec

if TYPE_CHECKING:
    from krfeed.schema.core import RealtimeType


class Record(msgspec.Struct, frozen=True, gc=False):
    """A decoded real-time record.

    ``received_at`` is when krfeed read the frame (UTC); ``item`` is the subscribed key: the
    Kiwoom entry's ``item`` as sent (``039490_AL``, ``''`` for account pushes) or, for KIS, the
    record's first field (the ``tr_key``: stock code, or HTS ID for execution notices).

    Construct records with keywords. (They also take positional arguments, in field order,
    because the compiled decoders build them that way: msgspec matches keyword arguments
    to fields one by one, which costs microseconds on types with a hundred fields.)
    """

    received_at: datetime
    item: str = ""

    broker: ClassVar[str] = ""
    type: ClassVar[str] = ""
    title: ClassVar[str] = ""
    account: ClassVar[bool] = False  # order/fill/balance push: never dropped by any queue

    @classmethod
    def schema(cls) -> RealtimeType:
        """The declaration this class was generated from."""
        from krfeed.schema.catalog import get_type

        return get_type(cls.broker, cls.type)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with ``broker`` and ``type`` first, then every field."""
        out: dict[str, Any] = {"broker": self.broker, "type": self.type}
        for name in self.__struct_fields__:
            out[name] = getattr(self, name)
        return out


class KiwoomRecord(Record, frozen=True, gc=False, kw_only=True):
    """A record from one entry of a Kiwoom ``REAL`` frame.

    ``extra``: the entry's values under FIDs the declaration does not know, as sent (the live
    service adds FIDs before the tables list them); empty when there are none.
    """

    broker: ClassVar[str] = "kiwoom"

    extra: dict[str, str] = msgspec.field(default_factory=dict)


class KISRecord(Record, frozen=True, gc=False, kw_only=True):
    """One record of a KIS data frame ``<enc>|<TR>|<NNN>|<payload>``.

    ``extra``: values after the last known field, as sent, where the live service sends a
    longer record than any layout krfeed knows (KIS appends fields without changing the TR id);
    empty otherwise.
    """

    broker: ClassVar[str] = "kis"

    extra: tuple[str, ...] = ()


R = TypeVar("R", bound=Record)


@dataclass(frozen=True, slots=True)
class TypeRef(Generic[R]):
    """A real-time type as users name it: ``Kiwoom.ORDER_EXECUTION``, ``KIS.PROGRAM_TRADING``."""

    broker: str
    code: str
    record: type[R]

    def __str__(self) -> str:
        return f"{self.broker}:{self.code}"
