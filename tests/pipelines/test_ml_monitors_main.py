"""The ML monitors in the main job as a user runs it (a subprocess): a drift rule makes the aggregation keep
and store per-window distributions, an slo rule stores its error budget as a metric, and a backtest over the
stored output raises the same episodes as the main job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airis_mon.schema import RAW_POINT_SCHEMA
from tests.pipelines.test_main import alerts_in, main
from transforms.distributions import Distribution

T0_S = 1_795_824_000  # 2026-11-28T00:00:00Z
CONFIG = """
integrations:
  - {name: exports, type: point_files, paths: [points.parquet]}
aggregation: {window_seconds: 60}
rules:
  - {name: score_drift, type: drift, metric: score, window: 1h, method: ks, threshold: 0.3, min_count: 100,
     reference: {type: rolling, length: 6h}, severity: warning}
  - {name: availability, type: slo, metric: requests, bad_metric: errors, objective: 0.999, period: 1d,
     severity: critical}
sinks:
  - {name: storage, type: parquet, path: out}
"""


def _points(folder: Path) -> None:
    """12 h of scores (shifted from 9 h on) and of requests/errors (2 % errors from 10 h on), one point a
    minute per metric (scores: 20 a minute)."""
    rng = np.random.default_rng(3)
    rows = {name: [] for name in RAW_POINT_SCHEMA.names}

    def add(t: float, name: str, value: float) -> None:
        for key, item in zip(
            RAW_POINT_SCHEMA.names, (t, "app", name, value, "", '{"model_name":"fraud"}'), strict=True
        ):
            rows[key].append(item)

    for minute in range(12 * 60):
        t = T0_S + minute * 60
        shifted = minute >= 9 * 60
        for i, score in enumerate(rng.beta(5 if shifted else 2, 2 if shifted else 5, 20)):
            add(t + i * 3, "score", float(score))
        add(t, "requests", 1000.0)
        add(t, "errors", 20.0 if minute >= 10 * 60 else 0.0)
    pq.write_table(pa.table(rows, schema=RAW_POINT_SCHEMA), folder / "points.parquet")


def test_drift_and_slo_rules_in_the_main_job_and_the_backtest(tmp_path: Path):
    _points(tmp_path)
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    main("--config", str(tmp_path / "config.yaml"))
    out = tmp_path / "out"

    distributions = pq.read_table(out / "distributions" / "date=2026-11-28")
    assert set(distributions.column("name").to_pylist()) == {"score"}  # only what drift rules read
    assert distributions.num_rows == 12 * 60 and pc.sum(distributions.column("count")).as_py() == 12 * 60 * 20
    first = distributions.sort_by("window_start_ms").slice(0, 1).to_pylist()[0]
    sketch = Distribution(first["mapping"], np.array(first["bins"]), np.array(first["counts"]))
    assert sketch.total == 20 and first["mapping"].startswith("ddsketch:")

    budget = pq.read_table(out / "rule_metrics" / "date=2026-11-28")
    assert set(budget.column("name").to_pylist()) == {"slo_error_budget_remaining"}
    values = budget.sort_by("timestamp_ms").column("value").to_pylist()
    assert values[0] == 1.0 and min(values) < 1.0  # all of it left, then the 2 % errors spend some
    assert json.loads(budget.column("tags")[0].as_py()) == {"model_name": "fraud", "rule": "availability"}

    alerts = alerts_in(out)
    triggers = {a["rule"]: a for a in alerts if a["notification"] == "trigger"}
    assert set(triggers) == {"score_drift", "availability"}
    assert triggers["score_drift"]["starts_at_ms"] == (T0_S + 9 * 3600) * 1000
    # 2 % errors against 99.9 %: burn 20; the 1 h window reaches 14.4 after 43.2 minutes -> at 10:44
    assert triggers["availability"]["timestamp_ms"] == (T0_S + 10 * 3600 + 44 * 60) * 1000

    backtest_out = tmp_path / "backtest"
    main("--config", str(tmp_path / "config.yaml"), "--history", str(out), "--output", str(backtest_out),
         job="pipelines.backtest")  # fmt: skip
    replayed = [json.loads(line) for line in (backtest_out / "backtest-alerts.jsonl").read_text().splitlines()]
    strip = ("context", "silenced")

    def same(alert: dict) -> tuple:
        return tuple(sorted((k, json.dumps(v)) for k, v in alert.items() if k not in strip))

    assert sorted(map(same, replayed)) == sorted(map(same, alerts))
