"""A local batch run goes straight to Beam's in-process FnApiRunner: no download of Prism, no name lookup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from apache_beam.options.pipeline_options import StandardOptions

from pipelines.options import beam_options

REPO = Path(__file__).resolve().parents[2]

# Runs the main job with every name lookup recorded (and refused unless it is for loopback).
LOOKUP_PROBE = """
import json, runpy, socket, sys
looked_up = []
real = socket.getaddrinfo
def recording(host, *args, **kwargs):
    looked_up.append(str(host))
    if host not in ("127.0.0.1", "localhost", "::1", None):
        raise socket.gaierror(socket.EAI_NONAME, "lookups are refused in this test")
    return real(host, *args, **kwargs)
socket.getaddrinfo = recording
sys.argv = ["pipelines.main", *sys.argv[2:]]
try:
    runpy.run_module("pipelines.main", run_name="__main__")
finally:
    with open(OUT_PATH, "w") as handle:
        json.dump(looked_up, handle)
"""


def test_batch_on_the_direct_runner_means_the_fnapi_runner():
    assert beam_options(["--runner", "DirectRunner"]).view_as(StandardOptions).runner == "FnApiRunner"
    assert beam_options([]).view_as(StandardOptions).runner == "FnApiRunner"
    assert beam_options(["--runner", "PrismRunner"]).view_as(StandardOptions).runner == "PrismRunner"
    streaming = beam_options(["--runner", "DirectRunner", "--streaming"]).view_as(StandardOptions)
    assert streaming.runner == "DirectRunner"  # streaming keeps Beam's own choice
    assert beam_options(["--runner", "DataflowRunner"]).view_as(StandardOptions).runner == "DataflowRunner"


def test_the_sample_run_looks_up_no_host(tmp_path):
    out = tmp_path / "lookups.json"
    probe = LOOKUP_PROBE.replace("OUT_PATH", repr(str(out)))
    result = subprocess.run(
        [sys.executable, "-c", probe, "pipelines.main", "--runner", "DirectRunner", "--output", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AIRIS-MON run summary" in result.stdout
    assert [host for host in json.loads(out.read_text()) if host not in ("127.0.0.1", "localhost", "::1")] == []
