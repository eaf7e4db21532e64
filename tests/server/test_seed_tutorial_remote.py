"""The seed tutorial scenario, run by pymilvus and by Heron's clients against `heron serve`."""

from __future__ import annotations

import pytest

from tests.server.conftest import run_scenario


@pytest.mark.parametrize("client", ["pymilvus", "heron"])
def test_seed_tutorial_passes_against_heron_serve(server, client):
    res = run_scenario(server.uri, client)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1].endswith(" 0 failed")
