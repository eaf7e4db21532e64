"""TIMESTAMPTZ values: ISO-8601 text and aware datetimes in, int64 microseconds since the epoch (UTC) stored,
ISO-8601 text in a chosen time zone out, as Milvus formats it (``2025-01-01T08:00:00+08:00``, ``Z`` for UTC).

A value without an offset is read in the zone given (the collection's
``timezone`` property, else UTC). Parsing and formatting run in
Arrow's kernels over the whole column; only values Arrow cannot read take the
per-value path, which also names the bad one.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ParamError

UTC = "UTC"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_US = pa.timestamp("us", tz="UTC")
#: 2038-01-01 in microseconds: past it, Arrow applies no daylight-saving rules, so zoneinfo answers.
_ARROW_RULES_END = 2_145_916_800_000_000


def check_zone(name: Any) -> str:
    """``name`` if it is a time zone Milvus accepts (an IANA name such as ``Asia/Shanghai``, or ``UTC``), else `ParamError`."""
    if not isinstance(name, str) or not name.strip():
        raise ParamError(f"timezone: got {name!r}, expected an IANA time zone name such as 'UTC' or 'Asia/Shanghai'")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ParamError(f"timezone: got {name!r}, which is not a known time zone; "
                         "expected an IANA name such as 'UTC' or 'Asia/Shanghai'") from None
    return name


def _one(value: Any, zone: str) -> int | None:
    """One value as microseconds since the epoch, or None if it is not a timestamp."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").astype(object)
    if isinstance(value, _dt.datetime):
        d = value
    elif isinstance(value, str):
        s = value.strip()
        if s.endswith(("z", "Z")):
            s = s[:-1] + "+00:00"
        try:
            d = _dt.datetime.fromisoformat(s)
        except ValueError:
            return None
    else:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(zone))
    delta = d - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_one(value: Any, zone: str = UTC) -> int | None:
    """Microseconds since the epoch for one ISO-8601 string or datetime; None if it is not one."""
    if isinstance(value, bool):
        return None
    return _one(value, zone)


def to_micros(values: list[Any], valid: np.ndarray | None, zone: str, what: str) -> np.ndarray:
    """int64 microseconds (UTC) of ``values`` (ISO-8601 strings, datetimes); `ParamError` naming the first bad one.

    Slots marked False in ``valid`` are nulls and come out as 0.
    """
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    if not n:
        return out
    keep = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if all(isinstance(v, str) for v, ok in zip(values, keep) if ok):
        texts = pa.array([v if ok else None for v, ok in zip(values, keep)], type=pa.string())
        try:
            ts = texts.cast(_US)  # every value carries its offset: one kernel
            return np.asarray(pc.fill_null(ts.cast(pa.int64()), 0), dtype=np.int64)
        except pa.ArrowInvalid:
            pass
        try:  # none carries an offset: read them in the zone
            naive = texts.cast(pa.timestamp("us"))
            local = naive if zone == UTC else pc.assume_timezone(naive, zone, ambiguous="earliest",
                                                                  nonexistent="latest")
            out = np.array(pc.fill_null(local.cast(pa.int64()), 0), dtype=np.int64)
            if zone != UTC:  # Arrow's zone rules stop at 2037; zoneinfo's go on
                for i in np.flatnonzero(keep & (out >= _ARROW_RULES_END)).tolist():
                    out[i] = _one(values[i], zone) or 0  # text Arrow read is text datetime reads
            return out
        except pa.ArrowInvalid:
            pass
    for i, (v, ok) in enumerate(zip(values, keep)):  # mixed forms, datetimes, or a bad value to name
        if not ok:
            continue
        us = parse_one(v, zone)
        if us is None:
            raise ParamError(f"{what} in row {i}: got {v!r}, expected an ISO-8601 timestamp such as "
                             "'2025-05-01T23:59:59+08:00' (or a datetime)")
        out[i] = us
    return out


def local_micros(micros: np.ndarray, zone: str) -> np.ndarray:
    """Wall-clock microseconds in ``zone`` of instants given in microseconds since the epoch (UTC)."""
    micros = np.asarray(micros, dtype=np.int64)
    if zone in (UTC, "Etc/UTC", "Z") or not len(micros):
        return micros
    aware = pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz=zone))
    local = np.array(pc.local_timestamp(aware).cast(pa.int64()), dtype=np.int64)
    far = np.flatnonzero(micros >= _ARROW_RULES_END)  # Arrow's zone rules stop at 2037; zoneinfo's go on
    if len(far):
        tz = ZoneInfo(zone)
        offsets = [_dt.datetime.fromtimestamp(int(m) // 1_000_000, tz).utcoffset() for m in micros[far]]
        local[far] = micros[far] + np.array([o // _dt.timedelta(microseconds=1) for o in offsets if o is not None],
                                            dtype=np.int64)
    return local


#: What ``time_fields`` may ask for, in Milvus's words.
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second", "microsecond")


def time_parts(micros: np.ndarray, zone: str, names: list[str]) -> list[list[int]]:
    """Per value, the named parts of its wall-clock time in ``zone`` (``time_fields``)."""
    local = local_micros(micros, zone)
    t = local.astype("datetime64[us]")
    years, months, days = t.astype("datetime64[Y]"), t.astype("datetime64[M]"), t.astype("datetime64[D]")
    parts = {
        "year": years.astype(np.int64) + 1970,
        "month": (months - years.astype("datetime64[M]")).astype(np.int64) + 1,
        "day": (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
        "hour": local // 3_600_000_000 % 24,
        "minute": local // 60_000_000 % 60,
        "second": local // 1_000_000 % 60,
        "microsecond": local % 1_000_000,
    }
    return np.stack([parts[n] for n in names], axis=1).tolist() if names else [[] for _ in local]


def parse_time_fields(text: str) -> list[str]:
    """``"year, month, day"`` as a list of parts; `ParamError` naming one Milvus does not have."""
    names = [n.strip().lower() for n in str(text).split(",") if n.strip()]
    for n in names:
        if n not in TIME_PARTS:
            raise ParamError(f"time_fields: unsupported component {n!r}; supported: {', '.join(TIME_PARTS)}")
    return names


def format_micros(micros: np.ndarray, zone: str = UTC) -> list[str]:
    """ISO-8601 text of int64 microseconds in ``zone``: ``Z`` for UTC, else the zone's offset at that instant."""
    micros = np.asarray(micros, dtype=np.int64)
    if not len(micros):
        return []
    local = local_micros(micros, zone)
    if zone in (UTC, "Etc/UTC", "Z"):
        suffix = np.full(len(micros), "Z", dtype=object)
    else:
        off_min = (local - micros) // 60_000_000
        kinds, which = np.unique(off_min, return_inverse=True)  # a zone has few offsets: text made once each
        texts = [f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in kinds.tolist()]
        suffix = np.array(texts, dtype=object)[which]
    whole = pa.array(local // 1_000_000, type=pa.int64()).cast(pa.timestamp("s"))  # %S: whole seconds
    text = pc.strftime(whole, format="%Y-%m-%dT%H:%M:%S")
    frac = local % 1_000_000
    if frac.any():  # microseconds where there are some, as Milvus prints them
        digits = pc.utf8_lpad(pa.array(frac, type=pa.int64()).cast(pa.string()), width=6, padding="0")
        tail = pc.if_else(pa.array(frac != 0), pc.binary_join_element_wise(".", digits, ""), "")
        text = pc.binary_join_element_wise(text, tail, "")
    return pc.binary_join_element_wise(text, pa.array(suffix, type=pa.string()), "").to_pylist()


def parse_literal(text: str, zone: str = UTC) -> int:
    """Microseconds of an ``ISO '...'`` filter literal; `ParamError` if it is not a timestamp."""
    us = parse_one(text, zone)
    if us is None:
        raise ParamError(f"ISO literal {text!r} is not an ISO-8601 timestamp such as '2025-05-01T23:59:59+08:00'")
    return us


_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def parse_interval(text: str) -> tuple[int, int, int]:
    """An ISO-8601 duration (``P1Y2M3DT4H5M6.5S``) as (months, days, microseconds); `ParamError` if malformed."""
    t = text.strip().upper()
    m = _DURATION.match(t)
    if m is None or t.lstrip("+-") == "P" or t.endswith("T"):
        raise ParamError(f"INTERVAL {text!r} is not an ISO-8601 duration such as 'P1D', 'PT3H' or 'P2DT6H'")
    g = {k: (v or "0") for k, v in m.groupdict().items()}
    sign = -1 if g["sign"] == "-" else 1
    months = int(g["y"]) * 12 + int(g["mo"])
    days = int(g["w"]) * 7 + int(g["d"])
    us = (int(g["h"]) * 3600 + int(g["mi"]) * 60) * 1_000_000 + round(float(g["s"]) * 1_000_000)
    return sign * months, sign * days, sign * us
