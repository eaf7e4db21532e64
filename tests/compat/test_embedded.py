"""The same pymilvus programs through ``heron.Client`` / ``heron.AsyncClient`` embedded, against Milvus Lite.

Each program gets a Heron client on a local path where the differential run
gives it pymilvus's ``MilvusClient``; it still builds pymilvus's own objects
(``DataType``, ``AnnSearchRequest``, rankers) through ``ctx.api``. Outcomes
are compared with Milvus Lite's, as in `test_differential`. A case listed in
`EMBEDDED_EXPECTED`, or in `EXPECTED_DIFFERENCES` and not in `SERVED_ONLY` (a difference
the served Heron shows too), must differ.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.compat import corpus
from tests.compat._expected import EMBEDDED_EXPECTED, EXPECTED_DIFFERENCES, SERVED_ONLY
from tests.compat._harness import Case, System, same
from tests.compat.test_differential import PARAMS, expected, show


@pytest.mark.parametrize("c,variant", PARAMS)
def test_embedded_same_as_milvus_lite(
    c: Case, variant: str, lite: System, heron_embedded: System, request
) -> None:
    test_id = f"{c.name}-{variant}"
    served_only = any(fnmatchcase(test_id, p) for p in SERVED_ONLY)
    reason = expected(test_id, EMBEDDED_EXPECTED) or (None if served_only else expected(test_id, EXPECTED_DIFFERENCES))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    want = lite.run(c, variant, corpus.pymilvus)
    got = heron_embedded.run(c, variant, corpus.pymilvus)
    where = same(want, got)
    assert where is None, f"differs at {where}\n  milvus-lite:    {show(want)}\n  heron embedded: {show(got)}"


def test_listed_embedded_differences_name_cases() -> None:
    """Every entry of `EMBEDDED_EXPECTED` and `SERVED_ONLY` matches at least one case."""
    ids = [p.id for p in PARAMS]
    stale = [p for p in [*EMBEDDED_EXPECTED, *SERVED_ONLY] if not any(fnmatchcase(i, p) for i in ids)]
    assert not stale, f"listed embedded differences that match no case: {stale}"
