"""stagepush_plugin: write stagepush transform plugins in Python.

A stagepush plugin is a WebAssembly component implementing the contract
``stagepush:transform@0.2.0`` (``wit/since_v0.2.0/transform.wit``, world ``transformer``):
it receives batches of rows from Snowflake Parquet unloads **in columns** and returns the
CluedIn entities they map to, packed into byte columns. This module hides the columns: a
plugin implements ``transform(row, out)`` over one :class:`Row` at a time and writes
entities with builders on :class:`Out`. It mirrors the Rust SDK (``plugins/sdk-rust``)
name for name::

    from stagepush_plugin import Info, Schema, Config, Row, Out, trimmed, export

    class Customer:
        @staticmethod
        def describe() -> Info:
            return Info("customer", "0.1.0").description("Customers to CluedIn")

        @classmethod
        def init(cls, schema: Schema, config: Config) -> "Customer":
            self = cls()
            self.id = schema.require("CUSTOMER_ID")     # raises: init fails with the message
            self.email = schema.column("EMAIL")         # None when absent
            return self

        def transform(self, row: Row, out: Out) -> None:
            out.entity("Customer", row.require(self.id)) \\
                .prop_lowercase("email", trimmed(row.get(self.email))) \\
                .finish()

    Plugin = export(Customer)   # componentize-py looks for `Plugin` in the app module

Cell values (what :meth:`Row.get` returns and what builders accept):

============================  =====================================================
column type                   Python value
============================  =====================================================
null (or a column not found)  ``None``
boolean                       ``bool``
integer                       ``int``
float                         ``float``
decimal (NUMBER(p, s))        :class:`Decimal` (exact; ``int(d)`` / ``Row.get_int``)
text                          ``str`` (``bytes`` when not valid UTF-8)
json (VARIANT, OBJECT, ...)   :class:`Json`, a ``str`` (``Row.get_json`` parses it)
date                          :class:`Date` (``str()`` is ``2024-05-01``)
timestamp                     :class:`Timestamp` (``str()`` is RFC 3339)
binary                        ``bytes``
list                          ``list`` of the above
============================  =====================================================

Errors: raise :class:`RowError` (or let ``Row.require`` / ``EntityBuilder.finish`` raise it)
to reject a row; its entities are discarded and the other rows go on. Any other exception
from ``transform`` rejects the row too, with the exception's type in the message and
where it was raised (``ValueError: bad value (at app.py:57 in transform)``). An
exception from ``init`` refuses the stage with its message.
"""

from __future__ import annotations

import gc as _gc
import json as _json
import struct as _struct
import sys as _sys
from array import array as _array
from enum import Enum
from itertools import accumulate as _accumulate
from itertools import islice as _islice
from operator import le as _le
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

try:  # The bindings componentize-py generates for the world `transformer`.
    from componentize_py_types import Err as _Err
    from wit_world.imports import host as _host
    from wit_world.imports import output as _o
    from wit_world.imports import types as _t
except ImportError as _e:  # pragma: no cover
    raise ImportError(
        "stagepush_plugin needs the contract's bindings: build with componentize-py "
        "(-d wit/since_v0.2.0 -w transformer), or for native tests run "
        "`componentize-py -d wit/since_v0.2.0 -w transformer bindings DIR` and put DIR on "
        "sys.path"
    ) from _e

__all__ = [
    "Col",
    "ColumnDef",
    "Config",
    "ConfigKeyInfo",
    "Date",
    "Decimal",
    "EntityBuilder",
    "Info",
    "Json",
    "Level",
    "Out",
    "PluginError",
    "Row",
    "RowError",
    "Schema",
    "TimeUnit",
    "Timestamp",
    "Value",
    "as_bool",
    "as_float",
    "as_int",
    "empty_as_null",
    "export",
    "kind",
    "log",
    "to_json",
    "trimmed",
]

Level = _host.Level
TimeUnit = _t.TimeUnit

# ---------------------------------------------------------------------------------------
# Errors


class PluginError(Exception):
    """An error with a message for a person: raised from ``init`` it refuses the stage."""


class RowError(PluginError):
    """Rejects the current row (a row error with this message); the batch goes on."""


# ---------------------------------------------------------------------------------------
# Values


class Decimal:
    """An exact decimal number: ``value × 10^-scale`` (Snowflake NUMBER(p, s), p <= 38)."""

    __slots__ = ("value", "scale")

    def __init__(self, value: int, scale: int = 0) -> None:
        self.value = value
        self.scale = scale

    def to_int(self) -> Optional[int]:
        """The value as an int when it is a whole number fitting 64 bits (``12.00`` -> 12)."""
        v, s = self.value, self.scale
        if s <= 0:
            v = v * 10 ** (-s)
        else:
            q, r = divmod(v, 10**s)
            if r:
                return None
            v = q
        return v if -(1 << 63) <= v < (1 << 63) else None

    def to_float(self) -> float:
        """The nearest float."""
        return float(self.value) * 10.0 ** (-self.scale)

    def __int__(self) -> int:
        i = self.to_int()
        if i is None:
            raise ValueError(f"{self} is not a 64-bit integer")
        return i

    __index__ = __int__

    def __float__(self) -> float:
        return self.to_float()

    def __str__(self) -> str:
        """Exact: ``Decimal(-1230, 2)`` is ``-12.30``, ``Decimal(42)`` is ``42``."""
        v, s = self.value, self.scale
        if s == 0:
            return str(v)
        sign = "-" if v < 0 else ""
        digits = str(abs(v))
        if s < 0:
            return sign + digits + ("0" * -s if v else "")
        n = len(digits)
        if n > s:
            return f"{sign}{digits[: n - s]}.{digits[n - s :]}"
        return f"{sign}0.{'0' * (s - n)}{digits}"

    def __repr__(self) -> str:
        return f"Decimal({self.value}, {self.scale})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Decimal)
            and self.value == other.value
            and self.scale == other.scale
        )

    def __hash__(self) -> int:
        return hash((self.value, self.scale))


_PER_SECOND = {
    TimeUnit.SECONDS: 1,
    TimeUnit.MILLIS: 1_000,
    TimeUnit.MICROS: 1_000_000,
    TimeUnit.NANOS: 1_000_000_000,
}
_FRACTION = {TimeUnit.SECONDS: 0, TimeUnit.MILLIS: 3, TimeUnit.MICROS: 6, TimeUnit.NANOS: 9}


def _civil_from_days(z: int) -> Tuple[int, int, int]:
    z += 719_468
    era, doe = divmod(z, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y, m, d)


def _days_from_civil(y: int, m: int, d: int) -> int:
    if m <= 2:
        y -= 1
    era, yoe = divmod(y, 400)
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _ymd(y: int, m: int, d: int) -> str:
    return f"{'-' if y < 0 else ''}{abs(y):04d}-{m:02d}-{d:02d}"


class Date:
    """Days since 1970-01-01 (Snowflake DATE). ``str()`` is RFC 3339: ``2024-05-01``."""

    __slots__ = ("days",)

    def __init__(self, days: int) -> None:
        self.days = days

    @staticmethod
    def from_ymd(year: int, month: int, day: int) -> "Date":
        return Date(_days_from_civil(year, month, day))

    def ymd(self) -> Tuple[int, int, int]:
        return _civil_from_days(self.days)

    def to_timestamp(self) -> "Timestamp":
        """Midnight of this date, as a wall-clock timestamp in seconds."""
        return Timestamp(self.days * 86_400, TimeUnit.SECONDS, True)

    def __str__(self) -> str:
        return _ymd(*_civil_from_days(self.days))

    def __repr__(self) -> str:
        return f"Date({self.days})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Date) and self.days == other.days

    def __hash__(self) -> int:
        return hash(self.days)


class Timestamp:
    """``value`` units since 1970-01-01T00:00:00. ``wall_clock`` is true for Snowflake's
    TIMESTAMP_NTZ (a local date-time with no zone). ``str()`` is RFC 3339 in UTC with the
    unit's precision: ``2024-05-01T12:34:56.789Z`` (millis)."""

    __slots__ = ("value", "unit", "wall_clock")

    def __init__(self, value: int, unit: TimeUnit = TimeUnit.MILLIS, wall_clock: bool = False):
        self.value = value
        self.unit = unit
        self.wall_clock = wall_clock

    @staticmethod
    def from_millis(value: int) -> "Timestamp":
        return Timestamp(value, TimeUnit.MILLIS, False)

    def split(self) -> Tuple[int, int]:
        """Whole seconds since the epoch (floored) and the nanoseconds within that second."""
        per = _PER_SECOND[self.unit]
        secs, rem = divmod(self.value, per)
        return secs, rem * (1_000_000_000 // per)

    def to_millis(self) -> int:
        """Milliseconds since the epoch (floored)."""
        return self.value * 1000 // _PER_SECOND[self.unit]

    def rfc3339(self) -> str:
        secs, nanos = self.split()
        days, sod = divmod(secs, 86_400)
        s = f"{_ymd(*_civil_from_days(days))}T{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
        frac = _FRACTION[self.unit]
        if frac:
            s += "." + str(nanos // 10 ** (9 - frac)).zfill(frac)
        return s + "Z"

    __str__ = rfc3339

    def __repr__(self) -> str:
        return f"Timestamp({self.value}, {self.unit}, wall_clock={self.wall_clock})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Timestamp)
            and self.value == other.value
            and self.unit == other.unit
            and self.wall_clock == other.wall_clock
        )

    def __hash__(self) -> int:
        return hash((self.value, self.unit))


class Json(str):
    """JSON text (VARIANT, OBJECT, ARRAY). As a property it is embedded as JSON, not as a
    string; :meth:`parse` (or ``Row.get_json``) parses it on demand."""

    __slots__ = ()

    def parse(self) -> Any:
        return _json.loads(self)


Value = Union[None, bool, int, float, Decimal, str, Json, Date, Timestamp, bytes, list]
"""A cell (see the module documentation)."""

# Rust's `char::is_whitespace` (Unicode White_Space): what `trimmed` strips. Python's
# `str.strip()` strips U+001C-U+001F too, which Rust keeps.
_WS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trimmed(v: Value) -> Value:
    """Text with surrounding whitespace removed; other values (JSON too) unchanged.
    Whitespace-only text stays ``""``, not ``None``."""
    if v.__class__ is str:
        return v.strip(_WS)
    return v


def empty_as_null(v: Value) -> Value:
    """``None`` for empty text; other values unchanged."""
    if v.__class__ is str and not v:
        return None
    return v


def kind(v: Value) -> str:
    """``null``, ``boolean``, ``integer``, ``float``, ``decimal``, ``text``, ``json``,
    ``date``, ``timestamp``, ``binary`` or ``list``."""
    if v is None:
        return "null"
    c = v.__class__
    if c is bool:
        return "boolean"
    if c is int:
        return "integer"
    if c is float:
        return "float"
    if c is Decimal:
        return "decimal"
    if c is Json:
        return "json"
    if isinstance(v, str):
        return "text"
    if c is Date:
        return "date"
    if c is Timestamp:
        return "timestamp"
    if isinstance(v, (bytes, bytearray)):
        return "binary"
    if isinstance(v, (list, tuple)):
        return "list"
    return c.__name__


def as_bool(v: Value) -> Optional[bool]:
    """``bool``; integers and decimals 0/1; text ``true``/``false``/``1``/``0`` (trimmed,
    any case). Anything else is ``None``."""
    c = v.__class__
    if c is bool:
        return v  # type: ignore[return-value]
    if c is int:
        return {0: False, 1: True}.get(v)  # type: ignore[arg-type]
    if c is Decimal:
        return {0: False, 1: True}.get(v.to_int())  # type: ignore[union-attr,arg-type]
    if c is str:
        s = v.strip(_WS)  # type: ignore[union-attr]
        if s == "1" or (len(s) == 4 and s.lower() == "true" and s.isascii()):
            return True
        if s == "0" or (len(s) == 5 and s.lower() == "false" and s.isascii()):
            return False
    return None


def as_int(v: Value) -> Optional[int]:
    """``int``; a whole :class:`Decimal` that fits 64 bits (the usual NUMBER(38,0) id);
    text holding a (trimmed) decimal integer. Anything else is ``None``."""
    c = v.__class__
    if c is int:
        return v  # type: ignore[return-value]
    if c is Decimal:
        return v.to_int()  # type: ignore[union-attr]
    if c is str:
        s = v.strip(_WS)  # type: ignore[union-attr]
        body = s[1:] if s[:1] in ("+", "-") else s
        if body.isascii() and body.isdigit():
            i = int(s)
            return i if -(1 << 63) <= i < (1 << 63) else None
    return None


def as_float(v: Value) -> Optional[float]:
    """``float``, ``int``, :class:`Decimal` (nearest float) or text that parses as a number."""
    c = v.__class__
    if c is float:
        return v  # type: ignore[return-value]
    if c is int:
        return float(v)  # type: ignore[arg-type]
    if c is Decimal:
        return v.to_float()  # type: ignore[union-attr]
    if c is str:
        try:
            return float(v.strip(_WS))  # type: ignore[union-attr]
        except ValueError:
            return None
    return None


def _float_display(f: float) -> str:
    """Rust's `Display` for f64: shortest round-trip digits, never an exponent."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    import decimal

    s = format(decimal.Decimal(repr(f)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _float_debug(f: float) -> str:
    """Rust's `Debug` for a finite f64 (what JSON lists use): `1.0`, `1e16`, `1e-5`."""
    r = repr(f)
    if "e" in r:
        m, e = r.split("e")
        return f"{m}e{int(e)}"
    return r


def _base64(b: bytes) -> str:
    import base64

    return base64.b64encode(bytes(b)).decode("ascii")


def _json_str(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o == 8:
            out.append("\\b")
        elif o == 12:
            out.append("\\f")
        elif o < 0x20:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_json(v: Value) -> str:
    """``v`` as JSON text, exactly as the Rust SDK writes it: null, booleans and integers as
    such; floats as numbers (``null`` when not finite); decimals as exact numbers; text as a
    string; JSON text as is; dates and timestamps as RFC 3339 strings; binary as base64;
    lists as arrays (dicts with text keys as objects)."""
    if v is None:
        return "null"
    c = v.__class__
    if c is bool:
        return "true" if v else "false"
    if c is int:
        return str(v)
    if c is float:
        return _float_debug(v) if v - v == 0 else "null"  # type: ignore[operator]
    if c is Decimal:
        return str(v)
    if c is Json:
        return str.__str__(v)  # type: ignore[arg-type]
    if isinstance(v, str):
        return _json_str(v)
    if c is Date or c is Timestamp:
        return f'"{v}"'
    if isinstance(v, (bytes, bytearray)):
        return f'"{_base64(v)}"'
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{_json_str(str(k))}:{to_json(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {c.__name__} as JSON")


# ---------------------------------------------------------------------------------------
# Schema, Info, Config


class Col(int):
    """A handle to an input column (its index in the schema), from :meth:`Schema.column`
    / :meth:`Schema.require`. Keep it on the plugin and pass it to :meth:`Row.get`."""

    __slots__ = ()

    def index(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"Col({int(self)})"


_SCALAR_NAMES = {
    _t.ScalarType_Boolean: "boolean",
    _t.ScalarType_Integer: "integer",
    _t.ScalarType_Float: "float",
    _t.ScalarType_Text: "text",
    _t.ScalarType_Json: "json",
    _t.ScalarType_Date: "date",
    _t.ScalarType_Binary: "binary",
}


def scalar_type_name(s: Any) -> str:
    """``boolean``, ``integer``, ``float``, ``decimal(38,0)``, ``text``, ``json``, ``date``,
    ``timestamp(millis,wall-clock)`` / ``timestamp(micros,utc)``, ``binary``."""
    c = s.__class__
    if c is _t.ScalarType_Decimal:
        return f"decimal({s.value[0]},{s.value[1]})"
    if c is _t.ScalarType_Timestamp:
        unit = s.value.unit.name.lower()
        return f"timestamp({unit},{'wall-clock' if s.value.wall_clock else 'utc'})"
    return _SCALAR_NAMES[c]


def column_type_name(t: Any) -> str:
    """The scalar type's name, or ``list<…>`` of it."""
    if t.__class__ is _t.ColumnType_List:
        return f"list<{scalar_type_name(t.value)}>"
    return scalar_type_name(t.value)


_ASCII_LOWER = {i: i + 32 for i in range(65, 91)}


def _ascii_lower(s: str) -> str:
    return s.translate(_ASCII_LOWER)


class ColumnDef:
    """One column of a :class:`Schema`: ``name``, ``type`` (the contract's column type),
    ``nullable``, ``index``."""

    __slots__ = ("_schema", "index")

    def __init__(self, schema: "Schema", index: int) -> None:
        self._schema = schema
        self.index = index

    @property
    def name(self) -> str:
        return self._schema.raw[self.index].name

    @property
    def type(self) -> Any:
        return self._schema.raw[self.index].type

    @property
    def type_name(self) -> str:
        return column_type_name(self.type)

    @property
    def nullable(self) -> bool:
        return self._schema.raw[self.index].nullable

    def col(self) -> Col:
        """A handle to this column (marks it used, see :meth:`Schema.only_used_columns`)."""
        return self._schema._mark(self.index)

    def __repr__(self) -> str:
        return f"{self.name} {self.type_name}{'' if self.nullable else ' not null'}"


class Schema:
    """The columns of the stage's files, as passed to ``init``. Name lookups are
    case-insensitive (an exact match wins when names differ only in case)."""

    def __init__(self, columns: Sequence[Any]) -> None:
        self.raw = list(columns)
        self._used: List[int] = []
        self._only_used = False
        self._names: dict = {}

    def __len__(self) -> int:
        return len(self.raw)

    def __iter__(self) -> Iterator[ColumnDef]:
        return (ColumnDef(self, i) for i in range(len(self.raw)))

    def _find(self, name: str) -> Optional[int]:
        cols = self.raw
        for i, c in enumerate(cols):
            if c.name == name:
                return i
        lower = _ascii_lower(name)
        for i, c in enumerate(cols):
            if len(c.name) == len(name) and _ascii_lower(c.name) == lower:
                return i
        lower = name.lower()
        for i, c in enumerate(cols):
            if c.name.lower() == lower:
                return i
        return None

    def _mark(self, i: int) -> Col:
        if i not in self._used:
            self._used.append(i)
        return Col(i)

    def _lookup(self, name: str) -> Optional[Col]:
        """Name -> handle for ``Row.get("NAME")`` (cached, does not mark)."""
        try:
            return self._names[name]
        except KeyError:
            i = self._find(name)
            c = None if i is None else Col(i)
            self._names[name] = c
            return c

    def column(self, name: str) -> Optional[Col]:
        """The column named ``name`` (case-insensitive), or ``None``. A name that finds
        nothing but a similar column (a misspelling) logs a warning naming it, which the
        run reports once (as the Rust SDK does)."""
        i = self._find(name)
        if i is None:
            close = self.similar(name)
            if close:
                log(Level.WARN, f"no column {name} (did you mean {', '.join(close)}?)")
            return None
        return self._mark(i)

    def similar(self, name: str) -> list:
        """Up to 3 column names like ``name``: equal but for case, ``_``, ``-`` and spaces,
        or at most 2 edits apart (names of 4 characters or more)."""
        def squash(s: str) -> str:
            return "".join(c for c in s if c not in "_- ").upper()

        wanted = squash(name)
        out = []
        for c in self.raw:
            have = squash(c.name)
            if have == wanted or (len(wanted) >= 4 and _edit_distance(have, wanted) <= 2):
                out.append(c.name)
                if len(out) == 3:
                    break
        return out

    def require(self, name: str) -> Col:
        """The column named ``name`` (case-insensitive); raises :class:`PluginError` naming
        it and listing the columns there are (``init`` then fails with that message)."""
        c = self.column(name)
        if c is None:
            names = ", ".join(c.name for c in self.raw)
            raise PluginError(f"required column {name} not found (columns: {names})")
        return c

    def col_at(self, index: int) -> Optional[Col]:
        return self._mark(index) if 0 <= index < len(self.raw) else None

    def def_(self, col: int) -> ColumnDef:
        return ColumnDef(self, int(col))

    def name(self, col: int) -> str:
        return self.raw[col].name if 0 <= col < len(self.raw) else ""

    def only_used_columns(self) -> None:
        """Asks the host to send only the columns this plugin took a handle to during
        ``init``, in the order it first took them."""
        self._only_used = True

    def projection(self) -> Optional[List[int]]:
        return list(self._used) if self._only_used else None

    def __repr__(self) -> str:
        return repr(list(self))


class ConfigKeyInfo:
    """A configuration key a plugin accepts (see :meth:`Info.config_key`)."""

    __slots__ = ("name", "description", "required", "default")

    def __init__(self, name: str, description: str, required: bool, default: Optional[str]):
        self.name = name
        self.description = description
        self.required = required
        self.default = default


class Info:
    """What a plugin says about itself: returned by ``describe``."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.description_text = ""
        self.config_keys: List[ConfigKeyInfo] = []

    def description(self, description: str) -> "Info":
        """A one-line description."""
        self.description_text = description
        return self

    def config_key(
        self, name: str, description: str, required: bool = False, default: Optional[str] = None
    ) -> "Info":
        """Declares a configuration key. Unknown keys and missing required keys are refused
        before ``init``; :meth:`Config.get` falls back to ``default``."""
        self.config_keys.append(ConfigKeyInfo(name, description, required, default))
        return self

    def _to_wit(self) -> Any:
        return _t.PluginInfo(
            self.name,
            self.version,
            self.description_text,
            [_t.ConfigKey(k.name, k.description, k.required, k.default) for k in self.config_keys],
        )


class Config:
    """The user's ``key=value`` configuration, checked against the keys declared in
    :class:`Info`."""

    def __init__(self, values: Sequence[Tuple[str, str]], defaults: Sequence[Tuple[str, str]] = ()):
        self._values = list(values)
        self._defaults = list(defaults)

    @staticmethod
    def checked(info: Info, values: Sequence[Tuple[str, str]]) -> "Config":
        known = [c.name for c in info.config_keys]
        for k, _ in values:
            if k not in known:
                if not known:
                    raise PluginError(
                        f"unknown config key '{k}': plugin {info.name} takes no configuration"
                    )
                raise PluginError(
                    f"unknown config key '{k}' (plugin {info.name} accepts: {', '.join(known)})"
                )
        for c in info.config_keys:
            if c.required and not any(k == c.name for k, _ in values):
                raise PluginError(f"config key '{c.name}' is required ({c.description})")
        defaults = [(c.name, c.default) for c in info.config_keys if c.default is not None]
        return Config(values, defaults)

    def get(self, key: str) -> Optional[str]:
        """The value of ``key`` (the last one given), else its declared default."""
        for k, v in reversed(self._values):
            if k == key:
                return v
        for k, v in self._defaults:
            if k == key:
                return v
        return None

    def get_or(self, key: str, default: str) -> str:
        v = self.get(key)
        return default if v is None else v

    def require(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise PluginError(f"config key '{key}' is required")
        return v

    def parse(self, key: str, parse: Callable[[str], Any]) -> Any:
        """The value of ``key`` parsed by ``parse`` (e.g. ``int``), ``None`` when absent."""
        v = self.get(key)
        if v is None:
            return None
        try:
            return parse(v.strip())
        except Exception as e:  # noqa: BLE001
            raise PluginError(f"config key '{key}': invalid value '{v}': {e}") from None

    def items(self) -> List[Tuple[str, str]]:
        """The pairs the user gave, in order (defaults not included)."""
        return list(self._values)


def _edit_distance(a: str, b: str) -> int:
    """Insertions, deletions and changes that turn ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        diagonal, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            above = row[j + 1]
            row[j + 1] = min(above + 1, row[j] + 1, diagonal + (ca != cb))
            diagonal = above
    return row[len(b)]


def log(level: Level, message: str) -> None:
    """Writes a line to the host's log, attributed to the plugin (natively: stderr)."""
    try:
        _host.log(level, message)
    except NotImplementedError:
        print(f"[plugin {level.name}] {message}", file=_sys.stderr)


# ---------------------------------------------------------------------------------------
# Batches: columns to Python values, lazily, one column at a time


class _Malformed(Exception):
    pass


def _check_offsets(offsets: Sequence[int], data_len: int, what: str) -> None:
    if offsets and (offsets[0] < 0 or not all(map(_le, offsets, _islice(offsets, 1, None)))):
        prev = 0
        for i, o in enumerate(offsets):
            if i > 0 and o < prev:
                raise _Malformed(f"{what}: offset {i} ({o}) is before the previous one ({prev})")
            prev = o
    if offsets and offsets[-1] > data_len:
        raise _Malformed(f"{what}: last offset {offsets[-1]} is past the end ({data_len})")


def _byte_values(c: Any, wrap: Any, text: bool) -> list:
    data, offs = c.data, c.offsets
    if not offs:
        raise _Malformed("offsets: empty (need one more entry than values)")
    _check_offsets(offs, len(data), "offsets")
    ends = _islice(offs, 1, None)
    if not text:
        return [data[a:b] for a, b in zip(offs, ends)]
    if data.isascii():
        # One decode for the whole column; each value is a slice of it.
        s = data.decode("ascii")
        vals = [s[a:b] for a, b in zip(offs, ends)]
    else:
        try:  # every value valid UTF-8 (the usual case): one pass, no per-value try
            vals = [data[a:b].decode("utf-8") for a, b in zip(offs, ends)]
        except UnicodeDecodeError:
            vals = []
            for a, b in zip(offs, _islice(offs, 1, None)):
                try:
                    vals.append(data[a:b].decode("utf-8"))
                except UnicodeDecodeError:
                    vals.append(data[a:b])
            if wrap is not None:
                return [v if v.__class__ is bytes else wrap(v) for v in vals]
            return vals
    return vals if wrap is None else list(map(wrap, vals))


_VALUES_KIND = {
    _t.Values_Boolean: "boolean",
    _t.Values_Integer: "integer",
    _t.Values_Float: "float",
    _t.Values_Decimal: "decimal",
    _t.Values_Text: "text",
    _t.Values_Json: "json",
    _t.Values_Date: "date",
    _t.Values_Timestamp: "timestamp",
    _t.Values_Binary: "binary",
}
_MATCH = {
    _t.ScalarType_Boolean: _t.Values_Boolean,
    _t.ScalarType_Integer: _t.Values_Integer,
    _t.ScalarType_Float: _t.Values_Float,
    _t.ScalarType_Decimal: _t.Values_Decimal,
    _t.ScalarType_Text: _t.Values_Text,
    _t.ScalarType_Json: _t.Values_Json,
    _t.ScalarType_Date: _t.Values_Date,
    _t.ScalarType_Timestamp: _t.Values_Timestamp,
    _t.ScalarType_Binary: _t.Values_Binary,
}


def _decode(ty: Any, values: Any) -> list:
    """The Python values of a `values` variant (null slots hold whatever the host sent)."""
    vc = values.__class__
    if _MATCH.get(ty.__class__) is not vc:
        raise _Malformed(
            f"the schema says {scalar_type_name(ty)}, the batch holds {_VALUES_KIND.get(vc, '?')} values"
        )
    v = values.value
    if vc is _t.Values_Text:
        return _byte_values(v, None, True)
    if vc is _t.Values_Integer or vc is _t.Values_Float:
        return v
    if vc is _t.Values_Decimal:
        # Most decimals (ids) fit 64 bits: hi is 0, no 128-bit arithmetic for them.
        return [Decimal((d.hi << 64) | d.lo if d.hi else d.lo, d.scale) for d in v]
    if vc is _t.Values_Timestamp:
        unit, wc = ty.value.unit, ty.value.wall_clock
        return [Timestamp(x, unit, wc) for x in v]
    if vc is _t.Values_Boolean:
        return list(map(bool, v))
    if vc is _t.Values_Json:
        return _byte_values(v, Json, True)
    if vc is _t.Values_Date:
        return list(map(Date, v))
    return _byte_values(v, None, False)


def _with_nulls(vals: list, nulls: bytes) -> list:
    if not nulls:
        return vals
    return [None if z else x for x, z in zip(vals, nulls)]


class _BatchView:
    __slots__ = ("schema", "batch", "n", "sent", "vals")

    def __init__(self, schema: Schema, sent: List[int], batch: Any) -> None:
        if len(batch.columns) != len(sent):
            raise _Malformed(f"{len(batch.columns)} columns, expected {len(sent)}")
        self.schema = schema
        self.batch = batch
        self.n = batch.row_count
        # schema index -> batch column
        self.sent = {si: c for si, c in zip(sent, batch.columns)}
        self.vals: List[Optional[list]] = [None] * len(schema.raw)
        for si in sent:  # check every column now: a malformed batch fails as a whole
            self.column(si)
        nones = None
        for si, v in enumerate(self.vals):  # columns not sent read as None
            if v is None:
                if nones is None:
                    nones = [None] * self.n
                self.vals[si] = nones

    def column(self, si: int) -> list:
        vals = self.vals[si]
        if vals is not None:
            return vals
        n = self.n
        col = self.sent.get(si)
        if col is None:
            vals = [None] * n
        else:
            try:
                vals = self._convert(self.schema.raw[si].type, col, n)
            except _Malformed as e:
                raise _Malformed(f"column {self.schema.raw[si].name}: {e}") from None
        self.vals[si] = vals
        return vals

    @staticmethod
    def _convert(ty: Any, col: Any, n: int) -> list:
        nulls = col.nulls
        if nulls and len(nulls) != n:
            raise _Malformed(f"{len(nulls)} null flags for {n} rows")
        data = col.data
        if ty.__class__ is _t.ColumnType_Scalar and data.__class__ is _t.ColumnData_Scalar:
            vals = _decode(ty.value, data.value)
            if len(vals) != n:
                raise _Malformed(f"{len(vals)} values for {n} rows")
            return _with_nulls(vals, nulls)
        if ty.__class__ is _t.ColumnType_List and data.__class__ is _t.ColumnData_List:
            lv = data.value
            try:
                items = _decode(ty.value, lv.items)
            except _Malformed as e:
                raise _Malformed(f"items: {e}") from None
            offs = lv.offsets
            if len(offs) != n + 1:
                raise _Malformed(f"{len(offs)} list offsets for {n} rows")
            _check_offsets(offs, len(items), "list offsets")
            inulls = lv.item_nulls
            if inulls and len(inulls) != len(items):
                raise _Malformed(f"{len(inulls)} item null flags for {len(items)} items")
            items = _with_nulls(items, inulls)
            vals = [items[a:b] for a, b in zip(offs, _islice(offs, 1, None))]
            return _with_nulls(vals, nulls)
        raise _Malformed(f"the schema says {column_type_name(ty)}, the batch disagrees")


ColRef = Union[Col, int, str, None]


class Row:
    """One input row: typed access to its cells and to where it comes from.

    A column is a :class:`Col` handle, a column name (case-insensitive) or ``None`` (an
    optional column the plugin did not find: its cells read as ``None``). A row is only
    valid during the ``transform`` call it was passed to.
    """

    __slots__ = ("_view", "_vals", "_i", "_schema")

    def __init__(self, view: _BatchView, index: int) -> None:
        self._view = view
        self._vals = view.vals
        self._schema = view.schema
        self._i = index

    def get(self, col: ColRef) -> Value:
        """The cell of ``col``; ``None`` for a null cell or a column not found."""
        if col.__class__ is Col:  # the common case first
            return self._vals[col][self._i]
        if col is None:
            return None
        if col.__class__ is str:
            col = self._schema._lookup(col)  # type: ignore[arg-type]
            if col is None:
                return None
        # Every column of the schema has its values decoded for the batch (see _BatchView).
        return self._vals[col][self._i]  # type: ignore[index]

    def is_null(self, col: ColRef) -> bool:
        return self.get(col) is None

    def require(self, col: ColRef) -> Value:
        """The cell of ``col``, or raises :class:`RowError` ``"<COLUMN> is null"``."""
        if col is not None and col.__class__ is not str:
            v = self._vals[col][self._i]  # type: ignore[index]
        else:
            v = self.get(col)
        if v is None:
            if col.__class__ is str:
                c = self._schema._lookup(col)  # type: ignore[arg-type]
                name = col if c is None else self._schema.name(c)
            else:
                name = self._schema.name(col)  # type: ignore[arg-type]
            raise RowError(f"{name} is null")
        return v

    def get_str(self, col: ColRef) -> Optional[str]:
        """Text or JSON text."""
        v = self.get(col)
        return v if isinstance(v, str) else None

    def get_bool(self, col: ColRef) -> Optional[bool]:
        """A boolean (see :func:`as_bool`)."""
        if col is None:
            return None
        v = self.get(col) if col.__class__ is str else self._vals[col][self._i]  # type: ignore[index]
        if v is None or v.__class__ is bool:
            return v  # type: ignore[return-value]
        return as_bool(v)

    def get_int(self, col: ColRef) -> Optional[int]:
        """An integer, also from a whole decimal (NUMBER(38,0)) or integer text."""
        return as_int(self.get(col))

    get_i64 = get_int

    def get_float(self, col: ColRef) -> Optional[float]:
        return as_float(self.get(col))

    get_f64 = get_float

    def get_decimal(self, col: ColRef) -> Optional[Decimal]:
        """An exact decimal: a :class:`Decimal`, or an ``int`` as scale 0."""
        v = self.get(col)
        if v.__class__ is Decimal:
            return v  # type: ignore[return-value]
        if v.__class__ is int:
            return Decimal(v, 0)  # type: ignore[arg-type]
        return None

    def get_timestamp(self, col: ColRef) -> Optional[Timestamp]:
        """A timestamp, or a date as midnight. ``str()`` of it is RFC 3339."""
        v = self.get(col)
        if v.__class__ is Timestamp:
            return v  # type: ignore[return-value]
        if v.__class__ is Date:
            return v.to_timestamp()  # type: ignore[union-attr]
        return None

    def get_date(self, col: ColRef) -> Optional[Date]:
        """A date, or the date part (UTC) of a timestamp."""
        v = self.get(col)
        if v.__class__ is Date:
            return v  # type: ignore[return-value]
        if v.__class__ is Timestamp:
            return Date(v.split()[0] // 86_400)  # type: ignore[union-attr]
        return None

    def get_json(self, col: ColRef) -> Any:
        """A JSON cell parsed (``json.loads``); ``None`` for null. Text is parsed too."""
        v = self.get(col)
        return _json.loads(v) if isinstance(v, str) else None

    def get_list(self, col: ColRef) -> Optional[list]:
        v = self.get(col)
        return v if v.__class__ is list else None

    @property
    def index(self) -> int:
        """Index of this row in its batch."""
        return self._i

    @property
    def row_number(self) -> int:
        """Row number within the file (0-based)."""
        return self._view.batch.first_row + self._i

    @property
    def file_key(self) -> str:
        """The object key or path of the file this row comes from."""
        return self._view.batch.file.key

    @property
    def partitions(self) -> List[Tuple[str, Optional[str]]]:
        """The ``key=value`` partition folders of the file's path, in path order."""
        return list(self._view.batch.file.partitions)

    def partition(self, name: str) -> Union[None, Tuple[Optional[str]]]:
        """``None`` when the path has no such folder, else a 1-tuple holding the value
        (``(None,)`` for a ``_NULL_`` partition). Case-insensitive."""
        p = self._view.batch.file.partitions
        for k, v in p:
            if k == name:
                return (v,)
        low = _ascii_lower(name)
        for k, v in p:
            if _ascii_lower(k) == low:
                return (v,)
        return None

    @property
    def schema(self) -> Schema:
        return self._schema


# ---------------------------------------------------------------------------------------
# Output
#
# The contract's output is packed (`output.entities`): every column is a byte buffer of
# little-endian u32 / s64 values, which the bindings copy in one piece, where a list of
# records or variants would be converted one element at a time. An Out builds each column
# in an `array` (or a `bytearray`) and hands over its bytes at the end of the batch.

# Cell kinds (`output.cells`): what a cell is; its 64-bit word holds the value.
_K_NULL = 0
_K_BOOL = 1
_K_INT = 2
_K_FLOAT = 3
_K_DECIMAL = 4
_K_TEXT = 5
_K_JSON = 6
_K_DATE = 7
_K_TIMESTAMP = 8  # + the unit: 8 seconds, 9 millis, 10 micros, 11 nanos
_K_BINARY = 12
# Array type codes of the packed columns: 4-byte unsigned and 8-byte signed integers.
_U32 = "I" if _array("I").itemsize == 4 else "L"
_S64 = "q"
_LITTLE = _sys.byteorder == "little"
_F64 = _struct.Struct("<d")
_BITS = _struct.Struct("<q")
_WitDecimal = _t.Decimal
_I64 = 1 << 63
_U64 = (1 << 64) - 1
# Interned names an Out keeps across batches, at most (see Out._reset).
_MAX_KEPT_NAMES = 4096


def _le_bytes(a: Any) -> bytes:
    """The bytes of array ``a``, little-endian (the contract's byte order)."""
    if not _LITTLE:  # pragma: no cover (wasm32 and the usual test machines are little-endian)
        a = _array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _float_word(f: float) -> int:
    """The bits of ``f`` as a signed 64-bit word."""
    return _BITS.unpack(_F64.pack(f))[0]


def _date_word(d: "Date") -> int:
    """The days of ``d``, which the contract takes as a 32-bit value."""
    days = d.days
    if not -(1 << 31) <= days < (1 << 31):
        raise ValueError(f"date {days} days from 1970-01-01 is out of range")
    return days


def _ts_kind(unit: Any) -> int:
    """The cell kind of a timestamp in ``unit``."""
    if unit.__class__ is not TimeUnit:
        raise TypeError(f"timestamp unit must be a TimeUnit, not {unit.__class__.__name__}")
    return _K_TIMESTAMP + unit._value_  # SECONDS 0 .. NANOS 3; not `.value`, a property


class Out:
    """Where a row's entities go: passed to ``transform``. Each :meth:`entity` /
    :meth:`tombstone` starts one entity; :meth:`EntityBuilder.finish` commits it."""

    def __init__(self) -> None:
        # Interned entity types and property names: kept from batch to batch (a plugin
        # uses the same few), so a name is looked up once per use, never re-interned.
        self._names: List[str] = []
        self._index: dict = {}
        self._row = 0
        self._builder = EntityBuilder(self)
        self._reset()

    def _reset(self) -> None:
        # One entry per entity:
        self._rows = _array(_U32)
        self._ids: List[str] = []  # external ids, as text (packed in _take)
        self._types = _array(_U32)
        self._tkinds = bytearray()  # the timestamp cells
        self._twords = _array(_S64)
        self._deleted = bytearray()
        self._poffs = _array(_U32, (0,))
        # One entry per property (the three always the same length):
        self._pnames = _array(_U32)
        self._pkinds = bytearray()
        self._pwords = _array(_S64)
        self._decimals: List[Any] = []
        if len(self._names) > _MAX_KEPT_NAMES:  # a plugin making up names: start afresh
            self._names = []
            self._index = {}
        self._parts: List[Any] = []
        self._pos = 0
        self._binary = False
        self._errors: List[Any] = []
        # Text -> the word of its span in this batch's bytes: a repeated value (a country,
        # a status, a name) is written once per batch, then every entity shares the span.
        self._texts: dict = {}
        self._builder._bind(self)

    def entity(self, entity_type: str, external_id: Value) -> "EntityBuilder":
        """Starts an entity of type ``entity_type`` with this external id, written as text:
        text as is, integers and decimals exactly, dates and timestamps as RFC 3339. A null
        or empty id makes :meth:`EntityBuilder.finish` raise."""
        p = self._poffs[-1]
        if len(self._pnames) != p:  # an unfinished builder's properties
            del self._pnames[p:], self._pkinds[p:], self._pwords[p:]
        b = self._builder
        t = self._index.get(entity_type)
        b._tid = self._intern(entity_type) if t is None else t
        if external_id.__class__ is str and external_id:
            b._id = external_id  # type: ignore[assignment]
            b._err = None
        elif external_id.__class__ is Decimal and external_id.scale == 0:  # type: ignore[union-attr]
            b._id = str(external_id.value)  # type: ignore[union-attr]
            b._err = None
        elif external_id.__class__ is int:
            b._id = str(external_id)
            b._err = None
        else:
            b._id, b._err = _id_text(external_id)
        b._tsk = _K_NULL
        b._tsw = 0
        b._deleted = 0
        return b

    def tombstone(self, entity_type: str, external_id: Value) -> "EntityBuilder":
        """Starts a tombstone: an entity marked deleted (add a timestamp, no properties)."""
        b = self.entity(entity_type, external_id)
        b._deleted = 1
        return b

    def __len__(self) -> int:
        return len(self._rows)

    def _intern(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._names)
            self._names.append(name)
        return i

    def _span(self, s: str) -> int:
        """Appends ``s`` to the batch's bytes; the word of its span (offset | len << 32)."""
        start = self._pos
        n = len(s) if s.isascii() else len(s.encode("utf-8"))
        self._parts.append(s)
        self._pos = start + n
        return start | (n << 32)

    def _bytes(self, b: bytes) -> int:
        start = self._pos
        self._parts.append(bytes(b))
        self._binary = True
        self._pos = start + len(b)
        return start | (len(b) << 32)

    def _text_word(self, s: str) -> int:
        """The span word of ``s`` (exactly a ``str``), written once per batch."""
        w = self._texts.get(s)
        if w is None:
            start = self._pos
            n = len(s) if s.isascii() else len(s.encode("utf-8"))
            self._parts.append(s)
            self._pos = start + n
            w = self._texts[s] = start | (n << 32)
        return w

    def _put(self, v: Value, kinds: bytearray, words: Any) -> None:
        """Appends the cell of ``v`` to ``kinds`` and ``words``: the word first, as only
        that append can fail (a value beyond 64 bits), so both stay the same length."""
        c = v.__class__
        if c is str:
            w = self._text_word(v)  # type: ignore[arg-type]
            k = _K_TEXT
        elif c is bool:
            w = 1 if v else 0
            k = _K_BOOL
        elif c is Timestamp:
            k = _ts_kind(v.unit)  # type: ignore[union-attr]
            w = v.value  # type: ignore[union-attr]
        elif c is int:
            if not -_I64 <= v < _I64:  # type: ignore[operator]
                return self._put(Decimal(v, 0), kinds, words)  # type: ignore[arg-type]
            w = v  # type: ignore[assignment]
            k = _K_INT
        elif c is Decimal:
            x = v.value  # type: ignore[union-attr]
            d = _WitDecimal(x & _U64, x >> 64, v.scale)  # type: ignore[union-attr]
            w = len(self._decimals)
            self._decimals.append(d)
            k = _K_DECIMAL
        elif c is float:
            w = _float_word(v)  # type: ignore[arg-type]
            k = _K_FLOAT
        elif v is None:
            w = 0
            k = _K_NULL
        elif c is Json:
            w = self._span(str.__str__(v))  # type: ignore[arg-type]
            k = _K_JSON
        elif c is Date:
            w = _date_word(v)  # type: ignore[arg-type]
            k = _K_DATE
        elif isinstance(v, str):
            w = self._span(str.__str__(v))
            k = _K_TEXT
        elif isinstance(v, (bytes, bytearray, memoryview)):
            w = self._bytes(v)  # type: ignore[arg-type]
            k = _K_BINARY
        elif isinstance(v, (list, tuple, dict)):
            w = self._span(to_json(v))  # type: ignore[arg-type]
            k = _K_JSON
        else:
            raise TypeError(f"cannot send a {c.__name__} as a property value")
        words.append(w)
        kinds.append(k)

    def _rollback(self, row: int) -> None:
        rows = self._rows
        k = len(rows)
        while k and rows[k - 1] == row:
            k -= 1
        if k == len(rows):
            return
        del rows[k:], self._ids[k:], self._types[k:], self._deleted[k:]
        del self._tkinds[k:], self._twords[k:]
        del self._poffs[k + 1 :]
        p = self._poffs[k]
        del self._pnames[p:], self._pkinds[p:], self._pwords[p:]

    def _take(self) -> Any:
        p = self._poffs[-1]
        del self._pnames[p:], self._pkinds[p:], self._pwords[p:]
        if self._binary:
            payload = b"".join(
                x.encode("utf-8") if isinstance(x, str) else x for x in self._parts
            )
        else:
            payload = "".join(self._parts).encode("utf-8")
        # External ids (texts, one per entity) follow the other payload bytes; their spans
        # (offset, len) are made here in one pass rather than one at a time in `finish`.
        ids = self._ids
        n = len(ids)
        joined = "".join(ids)
        if joined.isascii():
            lens = _array(_U32, map(len, ids))
            id_bytes = joined.encode("ascii")
        else:
            encoded = [i.encode("utf-8") for i in ids]
            lens = _array(_U32, map(len, encoded))
            id_bytes = b"".join(encoded)
        spans = _array(_U32, bytes(8 * n))
        spans[0::2] = _array(_U32, _islice(_accumulate(lens, initial=len(payload)), n))
        spans[1::2] = lens
        empty: List[Any] = []
        entities = _o.Entities(
            n,
            _le_bytes(self._rows),
            _le_bytes(self._types),
            bytes(self._deleted),
            _le_bytes(spans),
            _o.Cells(bytes(self._tkinds), _le_bytes(self._twords), empty),
            _le_bytes(self._poffs),
            _le_bytes(self._pnames),
            _o.Cells(bytes(self._pkinds), _le_bytes(self._pwords), self._decimals),
            self._names,
            payload + id_bytes if id_bytes else payload,
        )
        out = _o.BatchOutput(entities, self._errors)
        self._reset()
        return out


def _id_text(v: Value) -> Tuple[Optional[str], Optional[str]]:
    """(text, None) or (None, error) for an external id."""
    c = v.__class__
    if c is str:
        s = v
    elif v is None:
        return None, "external id is null"
    elif c is Decimal or c is Date or c is Timestamp:
        s = str(v)
    elif c is bool:
        s = "true" if v else "false"
    elif c is int:
        s = str(v)
    elif c is float:
        s = _float_display(v)  # type: ignore[arg-type]
    elif isinstance(v, str):
        s = str.__str__(v)
    elif isinstance(v, (bytes, bytearray)):
        s = _base64(v)
    elif isinstance(v, (list, tuple)):
        s = to_json(v)
    else:
        s = str(v)
    if not s:
        return None, "external id is empty"
    return s, None  # type: ignore[return-value]


class EntityBuilder:
    """Builds one entity; from :meth:`Out.entity` or :meth:`Out.tombstone`. Call
    :meth:`finish` to commit it: a builder left unfinished leaves no entity. As in Rust,
    build one entity at a time (an :class:`Out` reuses one builder)."""

    __slots__ = (
        "_out",
        "_tid",
        "_id",
        "_err",
        "_tsk",
        "_tsw",
        "_deleted",
        "_pnames",
        "_pkinds",
        "_pwords",
        "_index",
        "_texts",
    )

    def __init__(self, out: Out) -> None:
        self._out = out
        self._tid = 0
        self._id: Optional[str] = None
        self._err: Optional[str] = "finish() called twice"
        self._tsk = _K_NULL  # the timestamp cell: kind and word
        self._tsw = 0
        self._deleted = 0

    def _bind(self, out: Out) -> None:
        """Points the builder at the output's columns of the batch that starts."""
        self._pnames = out._pnames
        self._pkinds = out._pkinds
        self._pwords = out._pwords
        self._index = out._index
        self._texts = out._texts

    def timestamp(self, value: Value) -> "EntityBuilder":
        """Sets the entity's timestamp (a :class:`Timestamp` or a :class:`Date`); ``None``
        means none. Any other value makes :meth:`finish` raise."""
        c = value.__class__
        if c is Timestamp:
            u = value.unit  # type: ignore[union-attr]
            self._tsk = _K_TIMESTAMP + u._value_ if u.__class__ is TimeUnit else _ts_kind(u)
            self._tsw = value.value  # type: ignore[union-attr]
        elif value is None:
            self._tsk = _K_NULL
            self._tsw = 0
        elif c is Date:
            self._tsw = _date_word(value)  # type: ignore[arg-type]
            self._tsk = _K_DATE
        elif self._err is None:
            self._err = f"entity timestamp must be a date or a timestamp, not {kind(value)}"
        return self

    def deleted(self, deleted: bool = True) -> "EntityBuilder":
        """Marks the entity deleted (a tombstone) or not."""
        self._deleted = 1 if deleted else 0
        return self

    def prop(self, name: str, value: Value) -> "EntityBuilder":
        """Adds property ``name`` — **unless the value is None**: null properties are omitted,
        as Snowflake's ``OBJECT_CONSTRUCT`` omits them (see :meth:`prop_or_null`)."""
        if value is not None:
            i = self._index.get(name)
            if i is None:
                i = self._out._intern(name)
            c = value.__class__
            if c is str:  # the common cases, inlined
                w = self._texts.get(value)
                self._pwords.append(self._out._text_word(value) if w is None else w)
                self._pkinds.append(_K_TEXT)
            elif c is bool:
                self._pwords.append(1 if value else 0)
                self._pkinds.append(_K_BOOL)
            elif c is Timestamp and value.unit.__class__ is TimeUnit:  # type: ignore[union-attr]
                self._pwords.append(value.value)  # type: ignore[union-attr]
                self._pkinds.append(_K_TIMESTAMP + value.unit._value_)  # type: ignore[union-attr]
            else:
                self._out._put(value, self._pkinds, self._pwords)
            self._pnames.append(i)
        return self

    def prop_or_null(self, name: str, value: Value) -> "EntityBuilder":
        """Adds property ``name``, sending ``None`` as an explicit null."""
        out = self._out
        i = out._intern(name)
        out._put(value, self._pkinds, self._pwords)
        self._pnames.append(i)
        return self

    def prop_null(self, name: str) -> "EntityBuilder":
        """Adds property ``name`` with an explicit null."""
        return self.prop_or_null(name, None)

    def prop_str(self, name: str, value: Optional[str]) -> "EntityBuilder":
        """Adds a text property (omitted when ``None``)."""
        return self.prop(name, None if value is None else str(value))

    def prop_json(self, name: str, json_text: Optional[str]) -> "EntityBuilder":
        """Adds a JSON property: ``json_text`` is embedded as is (omitted when ``None``)."""
        return self.prop(name, None if json_text is None else Json(json_text))

    def prop_bool(self, name: str, value: Optional[bool]) -> "EntityBuilder":
        return self.prop(name, None if value is None else bool(value))

    def prop_int(self, name: str, value: Optional[int]) -> "EntityBuilder":
        return self.prop(name, None if value is None else int(value))

    prop_i64 = prop_int

    def prop_float(self, name: str, value: Optional[float]) -> "EntityBuilder":
        return self.prop(name, None if value is None else float(value))

    prop_f64 = prop_float

    def prop_lowercase(self, name: str, value: Value) -> "EntityBuilder":
        """Adds a text property lower-cased (Unicode); other values as :meth:`prop` would;
        nulls are omitted. With :func:`trimmed` this normalises e-mail addresses."""
        if value.__class__ is str:
            i = self._index.get(name)
            if i is None:
                i = self._out._intern(name)
            # Not through the batch's text cache: lower-cased text is a new string, rarely
            # repeated (e-mail addresses). Out._span, inlined.
            out = self._out
            s = value.lower()  # type: ignore[union-attr]
            start = out._pos
            n = len(s) if s.isascii() else len(s.encode("utf-8"))
            out._parts.append(s)
            out._pos = start + n
            self._pwords.append(start | (n << 32))
            self._pkinds.append(_K_TEXT)
            self._pnames.append(i)
            return self
        return self.prop(name, value)

    def finish(self) -> None:
        """Commits the entity. Raises :class:`RowError` (rejecting the row) when it had a
        null or empty external id or a timestamp of the wrong kind."""
        err = self._err
        if err is not None:
            raise RowError(err)
        out = self._out
        out._twords.append(self._tsw)  # first: the one append that can fail (> 64 bits)
        self._err = "finish() called twice"
        out._tkinds.append(self._tsk)
        out._rows.append(out._row)
        out._ids.append(self._id)  # its span is made in Out._take
        out._types.append(self._tid)
        out._deleted.append(self._deleted)
        out._poffs.append(len(self._pnames))


# ---------------------------------------------------------------------------------------
# The export glue


def _message(e: BaseException) -> str:
    if isinstance(e, PluginError):
        return str(e)
    where = _where(e)
    return f"{type(e).__name__}: {e}" + (f" (at {where})" if where else "")


def _where(e: BaseException) -> str:
    """Where ``e`` was raised: the innermost frame of the plugin's own code as
    ``file:line in function``, and the innermost frame overall when that is elsewhere (in
    the SDK or a library)."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        name = code.co_filename.replace("\\", "/").rsplit("/", 1)[-1]
        frames.append((name, tb.tb_lineno, code.co_name, code.co_filename == __file__))
        tb = tb.tb_next
    if not frames:
        return ""
    own = [f for f in frames if not f[3]]
    shown = [own[-1]] if own else []
    if frames[-1] not in shown:
        shown.append(frames[-1])
    return ", ".join(f"{n}:{line} in {fn}" for n, line, fn, _ in shown)


class _Runner:
    def __init__(self, cls: Any, schema: List[Any], config: List[Tuple[str, str]]) -> None:
        cfg = Config.checked(cls.describe(), config)
        self.schema = Schema(schema)
        self.plugin = cls.init(self.schema, cfg)
        projection = self.schema.projection()
        self.projection = projection
        self.sent = projection if projection is not None else list(range(len(schema)))
        self.out = Out()

    def run(self, batch: Any) -> Any:
        out = self.out
        try:
            view = _BatchView(self.schema, self.sent, batch)
        except _Malformed as e:
            msg = f"malformed batch from the host: {e}"
            out._errors = [_t.RowError(i, msg) for i in range(batch.row_count)]
            return out._take()
        row = Row(view, 0)
        transform = self.plugin.transform
        errors = out._errors
        # A batch allocates thousands of small objects and no cycles of its own: the cyclic
        # collector would walk them over and over (~8 % of the time). It runs again, once,
        # after the batch.
        collecting = _gc.isenabled()
        _gc.disable()
        try:
            for i in range(view.n):
                row._i = i
                out._row = i
                try:
                    transform(row, out)
                except MemoryError:
                    # Not the row's fault: escaping, it traps the instance, and the host
                    # rebuilds it and runs the batch again instead of rejecting a good row.
                    raise
                except Exception as e:  # noqa: BLE001
                    out._rollback(i)
                    errors.append(_t.RowError(i, _message(e)))
            return out._take()
        finally:
            if collecting:
                _gc.enable()


def export(cls: Any) -> type:
    """The class componentize-py instantiates for the ``plugin`` export: in the app module,
    ``Plugin = export(MyPlugin)``. ``MyPlugin`` has ``describe()`` (static) returning
    :class:`Info`, ``init(schema, config)`` (class method) returning an instance, and
    ``transform(self, row, out)``."""

    class Plugin:
        _runner: Optional[_Runner] = None

        def describe(self) -> Any:
            return cls.describe()._to_wit()

        def init(self, schema: List[Any], config: List[Tuple[str, str]]) -> Any:
            Plugin._runner = None
            try:
                runner = _Runner(cls, schema, config)
            except Exception as e:  # noqa: BLE001
                raise _Err(_message(e)) from None
            Plugin._runner = runner
            # What exists now (modules, the plugin, its tables) lives as long as the
            # instance: keep the collector from walking it at every full collection.
            _gc.freeze()
            return _t.InitResult(runner.projection)

        def transform(self, batch: Any) -> Any:
            runner = Plugin._runner
            if runner is None:
                msg = "transform called before a successful init"
                out = Out()
                out._errors = [_t.RowError(i, msg) for i in range(batch.row_count)]
                return out._take()
            return runner.run(batch)

    Plugin.__qualname__ = Plugin.__name__ = "Plugin"
    return Plugin
