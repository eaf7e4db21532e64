"""Markdown files that several benchmarks write into, each into its own marked section.

A section is the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``;
`write_section` replaces it, or appends it when the file does not hold it yet,
and leaves the rest of the file (other benchmarks' sections, prose) as it is.
"""

from __future__ import annotations

from pathlib import Path


def write_section(path: str | Path, name: str, text: str) -> None:
    """Put ``text`` into section ``name`` of the markdown file at ``path`` (created if missing)."""
    p = Path(path)
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    old = p.read_text() if p.exists() else ""
    i, j = old.find(begin), old.find(end)
    if i >= 0 and j > i:
        new = old[:i] + block + old[j + len(end):]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
    p.write_text(new)
