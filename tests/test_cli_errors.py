"""``heron`` on real processes: ``--version``, and failures as one line naming the cause and the fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import heron


def _heron(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def test_version_prints_the_package_version() -> None:
    out = _heron("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"heron {heron.__version__}"


def test_a_data_directory_served_elsewhere_is_one_line_naming_the_fix(start_server, tmp_path) -> None:
    server = start_server()
    out = _heron("serve", "--data", server.data, "--port", "0")
    assert out.returncode == 1
    line = _one_line(out)
    assert line.startswith("heron serve: ") and "another process" in line and "close it there" in line
    assert server.proc.poll() is None  # the running server is untouched


def test_a_busy_port_is_one_line_naming_the_port_and_the_option(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = _heron("serve", "--data", str(tmp_path / "d"), "--port", str(port))
        debug = _heron("--debug", "serve", "--data", str(tmp_path / "d"), "--port", str(port))
    assert out.returncode == 1
    line = _one_line(out)
    assert f"127.0.0.1:{port}" in line and "in use" in line and "--port" in line
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    with heron.Client(str(tmp_path / "d")) as c:  # the directory was released: it opens here
        assert c.list_collections() == []


def test_a_missing_tls_file_is_one_line_naming_the_file(tmp_path) -> None:
    missing = str(tmp_path / "nope.pem")
    out = _heron("serve", "--data", str(tmp_path / "d"), "--port", "0", "--tls-cert", missing, "--tls-key", missing)
    assert out.returncode == 1
    line = _one_line(out)
    assert "No such file or directory" in line and missing in line


def test_a_port_out_of_range_is_a_usage_error_naming_the_range(tmp_path) -> None:
    out = _heron("serve", "--data", str(tmp_path / "d"), "--port", "70000")
    assert out.returncode == 2 and "0 to 65535" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "d").exists()


def test_an_unreachable_server_is_one_line(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        out = _heron("inspect", f"http://127.0.0.1:{port}")
    assert out.returncode == 1
    assert "UNAVAILABLE" in _one_line(out)
