"""Segment index builds held back, so a test can search fresh rows through their interim indexes."""

from __future__ import annotations

import threading

import pytest

from heron.engine import _maintenance


def held_builds(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Index builds wait (at most 60 s) until the returned event is set: fresh rows stay unindexed meanwhile."""
    release = threading.Event()
    build = _maintenance.build_index
    monkeypatch.setattr(_maintenance, "build_index", lambda *a, **k: (release.wait(60), build(*a, **k))[1])
    return release
