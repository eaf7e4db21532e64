"""A headless Chromium driven over the Chrome DevTools Protocol, for the console's browser test.

`Browser` starts ``chromium --headless`` with a debugging port of its own
choosing, connects to its first page with websockets, and offers the few
commands the test needs: navigate, evaluate JavaScript, type into a
focused element, click at an element's centre, wait for a condition, and
take a screenshot.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import require, require_module

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The path of a Chromium binary; skips (fails under CI) when there is none."""
    found = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    require(found, "headless Chromium is not installed (apt-get install chromium)")
    assert found is not None
    return found


class Browser:
    """One headless Chromium with one page; ``close()`` ends the process and removes its profile."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 60) -> None:
        ws = require_module("websockets.sync.client")
        self._profile = tempfile.mkdtemp(prefix="heron-chromium-")
        self._log = Path(self._profile) / "chromium.log"
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(
                [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
                 "--remote-debugging-address=127.0.0.1", f"--user-data-dir={self._profile}",
                 f"--window-size={width},{height}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            port = self._port(timeout)
            pages = self._pages(port, timeout)
            self._connection = ws.connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024,
                                          open_timeout=timeout)
            self.ws = self._connection.__enter__()
        except BaseException:
            self.close()
            raise
        self._id = 0
        self.timeout = timeout
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _port(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", self._log.read_text(errors="replace"))
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"chromium did not start: {self._log.read_text(errors='replace')[-3000:]}")

    def _pages(self, port: int, timeout: float) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if pages or time.monotonic() > end:
                return pages
            time.sleep(0.05)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command and return its result (events that arrive meanwhile are dropped)."""
        self._id += 1
        mine = self._id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        end = time.monotonic() + self.timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, end - time.monotonic())))
            if message.get("id") != mine:
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait until its document has loaded."""
        self.send("Page.navigate", url=url)
        self.wait("document.readyState === 'complete' && location.href !== 'about:blank'")

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait(self, expression: str, timeout: float = 30) -> None:
        """Wait until ``expression`` is truthy in the page."""
        end = time.monotonic() + timeout
        while True:
            if self.eval(f"!!({expression})"):
                return
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {expression}")
            time.sleep(0.1)

    def type(self, selector: str, text: str) -> None:
        """Focus the element ``selector``, clear it and type ``text`` as keyboard input."""
        self.eval(f"(e => {{ e.focus(); e.select && e.select(); }})(document.querySelector({json.dumps(selector)}))")
        self.send("Input.dispatchKeyEvent", type="keyDown", key="Delete", code="Delete", windowsVirtualKeyCode=46)
        self.send("Input.dispatchKeyEvent", type="keyUp", key="Delete", code="Delete", windowsVirtualKeyCode=46)
        self.send("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A mouse click at the centre of the element ``selector``."""
        box = self.eval(f"(r => [r.x + r.width / 2, r.y + r.height / 2])"
                        f"(document.querySelector({json.dumps(selector)}).getBoundingClientRect())")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def select(self, selector: str, value: str) -> None:
        """Choose ``value`` in the ``<select>`` ``selector`` as a user does (a change event follows)."""
        self.eval(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change')); }})"
                  f"(document.querySelector({json.dumps(selector)}))")

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the page's viewport."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.__exit__(None, None, None)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self._profile, ignore_errors=True)
