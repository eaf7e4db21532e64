"""Write src/heron/engine/filter/_grammar.tables: the filter parser, built from the grammar and saved.

Run after changing ``_grammar.lark`` (a test fails until then):

    python scripts/filter_tables.py
"""

from __future__ import annotations

from pathlib import Path

from heron.engine.filter._parser import build_parser, grammar_text, save_tables

OUT = Path(__file__).resolve().parent.parent / "src" / "heron" / "engine" / "filter" / "_grammar.tables"


def main() -> None:
    text = grammar_text()
    OUT.write_bytes(save_tables(build_parser(text), text))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
