"""Starts the writers of the kill rounds (``test_kill_rounds.py``) quickly: a fork server for ``_crash_child``.

    python tests/_kill_child.py

Starting Python and importing Heron takes about a second on a loaded
machine, longer than a round; this process does it once. For each line
``<json list of arguments>`` on stdin it forks a child that runs
``_crash_child.main(arguments)`` (a fresh process with no engine: nothing was
opened before the fork) and prints ``pid <pid>``; once that child has ended,
killed by the parent or by a fault point, it prints ``exit <pid> <status>``
(``-9`` for SIGKILL). It exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _crash_child  # noqa: E402
import heron.engine._engine  # noqa: E402, F401  (imported before forking, so each child starts at once)


def main() -> None:
    for line in sys.stdin:
        argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                sys.stdin.close()
                _crash_child.main(argv)
            except BaseException:  # reported to the parent through the exit status and stderr
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
