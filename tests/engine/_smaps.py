"""What ``/proc/self/smaps`` says of the mapping that holds an address (Linux)."""

from __future__ import annotations


def mapping_field(address: int, field: str) -> list[str] | None:
    """The words after ``field:`` (``Rss``, ``VmFlags``, ...) in the entry of the mapping holding `address`, or None."""
    inside = False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == field + ":":
                return line.split()[1:]
    return None
