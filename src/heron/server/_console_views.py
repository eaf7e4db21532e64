"""The HTML fragments of the web console (`heron.server._console`): collections, rows, errors.

Every value is escaped here; the fragments carry ``data-*`` attributes that
the page's script reads (the collections and fields the playground offers)
and that tests can find.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .._errors import HeronError
from ._rest_endpoints import type_name

#: Milvus's name of each load state number.
_LOAD = {0: "not exist", 1: "not loaded", 2: "loading", 3: "loaded"}
#: Cells longer than this are cut (a vector of a thousand numbers).
MAX_CELL = 160


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar(done: int, total: int) -> str:
    pct = 100.0 if total == 0 else 100.0 * done / total
    return (f'<span class="bar" title="{done:,} of {total:,} rows"><span style="width:{pct:.1f}%"></span></span> '
            f"{pct:.0f}%")


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _type(f: dict[str, Any]) -> str:
    t = type_name(f["type"])
    if f.get("element_type") is not None:
        t += f"&lt;{_e(type_name(f['element_type']))}&gt;"
    return t


def _params(f: dict[str, Any]) -> str:
    params = dict(f.get("params") or {})
    flags = [k for k in ("is_primary", "auto_id", "is_partition_key", "is_clustering_key", "nullable") if f.get(k)]
    if f.get("is_function_output"):
        flags.append("function output")
    text = ", ".join([*(k.replace("is_", "").replace("_", " ") for k in flags),
                      *(f"{k}={v}" for k, v in params.items())])
    return _e(text)


def collection(c: dict[str, Any]) -> str:
    """One collection's card: fields, partitions, indexes with build progress, segments."""
    d = c["describe"]
    fields = d["fields"]
    functions = d.get("functions") or []
    vectors = [f["name"] for f in fields if type_name(f["type"]).endswith("Vector")]
    attrs = {
        "data-db": c["db"], "data-collection": c["name"], "data-rows": c["rows"],
        "data-fields": json.dumps([f["name"] for f in fields]), "data-vectors": json.dumps(vectors),
        "data-text-search": json.dumps(sorted({o for fn in functions for o in fn.get("output_field_names", [])})),
    }
    attr = " ".join(f'{k}="{_e(v)}"' for k, v in attrs.items())
    load = _LOAD.get(int(c["load"]), str(c["load"]))
    parts = [f'<section class="collection" {attr}>',
             f"<h3>{_e(c['name'])} <small>{_e(c['db'])}</small></h3>",
             f'<p class="facts"><b class="rows">{c["rows"]:,}</b> rows &middot; {_n(len(c["partitions"]), "partition")} '
             f"&middot; {_n(len(c['segments']), 'segment')} &middot; {_e(load)}"
             + (" &middot; dynamic fields" if d.get("enable_dynamic_field") else "")
             + (f" &middot; aliases {_e(', '.join(d.get('aliases') or []))}" if d.get("aliases") else "") + "</p>"]
    parts.append(_table(["field", "type", "params"],
                        [[_e(f["name"]), _type(f), _params(f)] for f in fields], "fields"))
    if functions:
        parts.append(_table(["function", "type", "from", "to"], [
            [_e(fn.get("name", "")), _e(getattr(fn.get("type"), "name", fn.get("type", ""))), _e(", ".join(fn.get("input_field_names", []))),
             _e(", ".join(fn.get("output_field_names", [])))] for fn in functions], "functions"))
    parts.append(_table(["partition", "rows"], [[_e(p["name"]), f"{p['rows']:,}"] for p in c["partitions"]],
                        "partitions"))
    if c["indexes"]:
        parts.append(_table(["index", "field", "type", "metric", "state", "built"], [
            [_e(i["index_name"]), _e(i["field_name"]), _e(i["index_type"]), _e(i.get("metric_type", "")),
             _e(i["state"]), _bar(int(i["indexed_rows"]), int(i["total_rows"]))] for i in c["indexes"]], "indexes"))
    if c["segments"]:
        parts.append(_table(["segment", "state", "rows", "bytes", "index"], [
            [_e(s["segment_id"]), _e(s["state"]), f"{int(s['num_rows']):,}", f"{int(s['mem_size']):,}",
             _e(s.get("index_name") or "")] for s in c["segments"]], "segments"))
    parts.append("</section>")
    return "".join(parts)


def overview(databases: list[dict[str, Any]]) -> str:
    """Every database's collections as cards; a line when there are none."""
    out = []
    for db in databases:
        for c in db["collections"]:
            out.append(collection(c))
    if not out:
        return '<p class="empty">No collections yet: create one with a client, the REST API or pymilvus.</p>'
    return "".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    elif isinstance(value, bytes):
        text = value.hex()
    elif value is None:
        text = "null"
    else:
        text = str(value)
        if hasattr(value, "tolist"):
            text = json.dumps(value.tolist(), default=str)
    if len(text) > MAX_CELL:
        return f'<span title="{_e(text[:4000])}">{_e(text[:MAX_CELL])}&hellip;</span>'
    return _e(text)


def rows(found: list[dict[str, Any]], search: bool, seconds: float) -> str:
    """The playground's answer: its rows as a table (columns in the order they first appear)."""
    columns: list[str] = []
    for r in found:
        for k in r:
            if k not in columns:
                columns.append(k)
    if search and "distance" in columns:
        columns.remove("distance")
        columns.insert(1 if columns else 0, "distance")
    summary = (f'<p class="summary" data-count="{len(found)}">{len(found)} {"hits" if search else "rows"} '
               f"in {seconds * 1000:.1f} ms</p>")
    if not found:
        return summary
    return summary + _table(columns, [[_cell(r.get(k)) for k in columns] for r in found], "result")


def error(exc: HeronError) -> str:
    """An error as the console shows it."""
    return f'<p class="error" role="alert">{_e(exc)}</p>'


def waiting(auth: bool) -> str:
    """What the page shows before its first overview: a sign-in hint with --auth, else a loading line."""
    if auth:
        return '<p class="empty">This server requires a login: enter user:password above.</p>'
    return '<p class="empty">The server is starting&hellip;</p>'
