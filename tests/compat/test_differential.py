"""The differential harness: each pymilvus program against Milvus Lite and against ``heron serve``.

Both run live in this session, with the same pymilvus client (``MilvusClient``
for the ``sync`` variant, ``AsyncMilvusClient`` for ``async``); their
normalised outcomes must agree: ids, rows, counts, result shapes, error
codes. A case listed in `EXPECTED_DIFFERENCES` must differ (strict xfail).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest

from tests.compat import corpus
from tests.compat._expected import EXPECTED_DIFFERENCES
from tests.compat._harness import Case, System, same

PARAMS = [pytest.param(c, v, id=f"{c.name}-{v}") for c in corpus.cases() for v in c.variants]


def expected(test_id: str, table: dict[str, str]) -> str | None:
    """The reason listed for ``test_id`` in ``table``, if one pattern matches it."""
    return next((reason for pattern, reason in table.items() if fnmatchcase(test_id, pattern)), None)


def show(outcome: object) -> str:
    text = json.dumps(outcome, sort_keys=True, default=repr)
    return text if len(text) < 1500 else text[:1500] + " ..."


@pytest.mark.parametrize("c,variant", PARAMS)
def test_same_as_milvus_lite(c: Case, variant: str, lite: System, heron_served: System, request) -> None:
    reason = expected(f"{c.name}-{variant}", EXPECTED_DIFFERENCES)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    want = lite.run(c, variant, corpus.pymilvus)
    got = heron_served.run(c, variant, corpus.pymilvus)
    where = same(want, got)
    assert where is None, f"differs at {where}\n  milvus-lite: {show(want)}\n  heron serve: {show(got)}"


def test_corpus_is_broad() -> None:
    """The corpus keeps its breadth: hundreds of programs, a good share of them also async."""
    assert len(PARAMS) >= 300
    assert sum(1 for p in PARAMS if p.values[1] == "async") >= 60


def test_listed_differences_name_cases() -> None:
    """Every listed difference matches at least one case, so the table cannot go stale."""
    ids = [p.id for p in PARAMS]
    stale = [p for p in EXPECTED_DIFFERENCES if not any(fnmatchcase(i, p) for i in ids)]
    assert not stale, f"listed differences that match no case: {stale}"
