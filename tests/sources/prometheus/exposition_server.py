"""A loopback Prometheus endpoint that serves recorded exposition samples (127.0.0.1 only).

``ExpositionServer({"/metrics": ["vllm_1.prom", "vllm_2.prom"]})`` answers the
n-th GET of a path with the n-th recording (then the last one again), so
successive scrapes see counters grow, reset, and histogram buckets fill, as
a real server's would. A route may also be ``(status, body)`` or a delay in
seconds before answering (``{"/slow": [("sleep", 1.0, "vllm_1.prom")]}``).
The recordings in ``testdata/`` follow the vendors' documented formats (see
``testdata/README.md``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.sinks.receivers import Receiver, Recorded

TESTDATA = Path(__file__).parent / "testdata"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def recording(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


class ExpositionServer(Receiver):
    """Serve recordings per path, advancing one recording per GET."""

    def __init__(self, routes: dict[str, list]):
        self._routes = {path: list(steps) for path, steps in routes.items()}
        self._served: dict[str, int] = {}
        self._route_lock = threading.Lock()
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        path = request.path.split("?")[0]
        steps = self._routes.get(path)
        if steps is None:
            return 404, {"Content-Type": "text/plain"}, b"404 page not found\n"
        with self._route_lock:
            index = self._served.get(path, 0)
            self._served[path] = index + 1
        step = steps[min(index, len(steps) - 1)]
        if isinstance(step, tuple) and step[0] == "sleep":
            time.sleep(step[1])
            step = step[2]
        if isinstance(step, tuple):
            status, body = step
            return status, {"Content-Type": "text/plain"}, body
        return 200, {"Content-Type": TEXT_FORMAT}, recording(step)
