"""airis_mon.logs in a real process: JSON lines (fields, integration, run id, errors, warnings, uncaught
exceptions), the text format as before, and Beam's harmless lines dropped while its other warnings stay."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from airis_mon.logs import HARMLESS_BEAM_MESSAGES

REPO = Path(__file__).resolve().parents[2]
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def python(script: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
    )  # fmt: skip
    return result


def json_lines(stderr: str) -> list[dict]:
    """Every stderr line, parsed: fails on any line that is not one JSON object."""
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


SCRIPT = """
    import logging, sys, warnings
    from airis_mon.logs import integration_context, run_id, set_integration, set_run_id, setup_logging

    setup_logging(sys.argv[1] if len(sys.argv) > 1 else "{form}", "INFO", "backtest")
    log = logging.getLogger("airis_mon.test")
    print(run_id())
    log.info("plain %s", "line")
    log.warning("explicit", extra={{"integration": "prom"}})
    with integration_context("ldap"):
        log.info("in a poll")
        with integration_context("inner"):
            log.info("nested")
        log.info("back in the poll")
    log.info("after the poll")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("it failed")
    logging.getLogger("apache_beam.typehints.native_type_compatibility").info(
        'Converting string literal type hint to Any: "pa.Table"')
    logging.getLogger("apache_beam.runners.worker.statecache").info("Creating state cache with size 104857600")
    logging.info("Runner defaulting to pickling library: cloudpickle.")
    logging.getLogger("apache_beam.transforms.core").warning(
        "Using yield and return in the process method of <class 'somewhere.Else'> can lead to unexpected behavior")
    logging.getLogger("apache_beam.io.gcp.gcsio").warning("Unable to create default GCS bucket.")
    set_integration("api")
    log.info("process default")
    set_run_id("run-42")
    log.info("new run id")
    warnings.warn("a python warning", UserWarning)
    raise RuntimeError("uncaught")
"""


def test_json_lines_carry_component_logger_integration_run_id_and_errors():
    result = python(SCRIPT.format(form="json"))
    assert result.returncode == 1
    process_run_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", process_run_id)
    lines = json_lines(result.stderr)
    for line in lines:
        assert list(line)[:4] == ["time", "level", "component", "logger"]
        assert RFC3339_MS_UTC.match(line["time"]), line["time"]
        assert line["component"] == "backtest"
        assert set(line) <= {"time", "level", "component", "logger", "integration", "run_id", "message", "error"}
    messages = [(line["message"].split(":")[0], line.get("integration")) for line in lines]
    assert messages == [
        ("plain line", None),
        ("explicit", "prom"),
        ("in a poll", "ldap"),
        ("nested", "inner"),
        ("back in the poll", "ldap"),
        ("after the poll", None),
        ("it failed", None),
        (
            "Using yield and return in the process method of <class 'somewhere.Else'> can lead to unexpected behavior",
            None,
        ),
        ("Unable to create default GCS bucket.", None),
        ("process default", "api"),
        ("new run id", "api"),
        (lines[11]["message"].split(":")[0], "api"),  # the Python warning (file:line: UserWarning: ...)
        ("uncaught exception", "api"),
    ]
    assert [line["run_id"] for line in lines] == [process_run_id] * 10 + ["run-42"] * 3
    assert lines[6]["level"] == "ERROR" and "ZeroDivisionError: division by zero" in lines[6]["error"]
    assert lines[7]["level"] == "WARNING" and lines[7]["logger"] == "apache_beam.transforms.core"
    assert lines[11]["logger"] == "py.warnings" and "UserWarning: a python warning" in lines[11]["message"]
    assert lines[12]["level"] == "CRITICAL" and "RuntimeError: uncaught" in lines[12]["error"]
    assert all("error" not in line for line in lines[:6])


def test_text_stays_the_default_format_and_drops_the_same_beam_lines():
    result = python(SCRIPT.format(form="text"))
    lines = result.stderr.splitlines()
    starts = [line for line in lines if TEXT_LINE.match(line)]
    assert [line.split(": ", 1)[1] for line in starts[:7]] == [
        "plain line", "explicit", "in a poll", "nested", "back in the poll", "after the poll", "it failed"
    ]  # fmt: skip
    assert starts[0].split()[2:4] == ["INFO", "airis_mon.test:"]
    assert "Traceback (most recent call last)" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "UserWarning: a python warning" in result.stderr  # Python's own warning output, as before
    assert "RuntimeError: uncaught" in result.stderr
    assert "<class 'somewhere.Else'>" in result.stderr and "Unable to create default GCS bucket." in result.stderr
    for harmless in HARMLESS_BEAM_MESSAGES:
        assert harmless not in result.stderr
    assert not any(line.startswith("{") for line in lines)


def test_run_id_comes_from_the_environment_when_a_parent_hands_it_down():
    script = """
        import logging
        from airis_mon.logs import child_env, child_logging_args, setup_logging

        setup_logging("json", "DEBUG", "serve")
        logging.getLogger("x").debug("hello")
        print(child_env()["AIRIS_MON_RUN_ID"], child_logging_args())
    """
    result = python(script, env={"AIRIS_MON_RUN_ID": "parent-run"})
    assert json_lines(result.stderr)[0]["run_id"] == "parent-run"
    assert result.stdout.strip() == "parent-run ['--log-format', 'json', '--log-level', 'DEBUG']"


def test_exceptions_in_threads_are_json_lines_too():
    script = """
        import threading
        from airis_mon.logs import setup_logging

        setup_logging("json", "WARNING", "gateway")
        thread = threading.Thread(target=lambda: 1 / 0, name="rotate")
        thread.start()
        thread.join()
    """
    result = python(script)
    (line,) = json_lines(result.stderr)
    assert line["message"] == "uncaught exception in thread rotate" and "ZeroDivisionError" in line["error"]


def test_a_pollers_lines_carry_its_integration_in_a_real_pipeline():
    script = """
        import logging
        import apache_beam as beam
        from airis_mon.logs import setup_logging
        from sources.polling import PollSettings, ReadFromPoller

        class Talky:
            def setup(self): logging.getLogger("sources.talky").info("connecting")
            def poll(self, now_ms):
                logging.getLogger("sources.talky").warning("page limit reached")
                return [{"timestamp": now_ms, "source": "talky", "metrics": [{"name": "up", "value": 1}]}]
            def teardown(self): logging.getLogger("sources.talky").info("closing")

        class Downstream(beam.DoFn):
            def process(self, table):
                logging.getLogger("transforms.down").info("downstream %d", table.num_rows)
                yield table

        setup_logging("json", "INFO", "main")
        with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])) as p:
            outputs = p | ReadFromPoller("talky-prod", Talky, PollSettings())
            outputs["points"] | beam.ParDo(Downstream())
    """
    result = python(script)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line["message"]: line.get("integration") for line in json_lines(result.stderr)}
    assert lines["connecting"] == lines["page limit reached"] == "talky-prod"
    assert lines["downstream 1"] is None  # the steps fed by the poll's outputs are not the poll
    assert lines.get("closing", "talky-prod") == "talky-prod"  # (a runner may skip teardown at exit)


def test_importing_pipelines_drops_beams_import_time_apitools_line_before_any_handler_exists():
    # What `import apache_beam` does in a core install (no gcp extra): logging.warning(...) on the root logger,
    # before any entry point has set up its logging.
    script = """
        import logging
        import pipelines

        logging.warning("apitools not found, and bigquery client libraries are not available despite the import "
                        "not raising an ImportError.")
        logging.warning("a real warning")
    """
    result = python(script)
    assert result.returncode == 0
    assert result.stderr == "WARNING:root:a real warning\n"
