"""The labelled history of benchmarks.monitors_history: seeded determinism, and labels that agree with the
data (checked on the points with NumPy and scipy.stats, independently of the rule engine)."""

import itertools
import json

import numpy as np
import pyarrow.compute as pc
import pytest
from scipy import stats

from airis_mon.schema import METRIC_SCHEMA, canonical_tags
from benchmarks import monitors_history as mh
from benchmarks.monitors_history import DAY_MS, HOUR_MS, MINUTE_MS, SLO_OBJECTIVE, T0, generate

DAYS = 12


@pytest.fixture(scope="module")
def history():
    return generate(DAYS, seed=11)


def series(history, source, name, **tags):
    """(timestamps, values) of one series, in time order."""
    table = history.points
    mask = pc.and_(pc.and_(pc.equal(table.column("source"), source), pc.equal(table.column("name"), name)),
                   pc.equal(table.column("tags"), canonical_tags(tags)))  # fmt: skip
    selected = table.filter(mask)
    order = np.argsort(selected.column("timestamp_ms").to_numpy(), kind="stable")
    return selected.column("timestamp_ms").to_numpy()[order], selected.column("value").to_numpy()[order]


def between(timestamps, values, start_ms, end_ms):
    inside = (timestamps >= start_ms) & (timestamps < end_ms)
    return values[inside]


def of(history, monitor, *, decoys=False):
    return [i for i in (history.decoys if decoys else history.incidents) if i.monitor == monitor]


def group_value(incident):
    return next(iter(json.loads(incident.group).values()))


def test_same_seed_same_history_other_seed_other_values():
    first, second = generate(5, seed=3), generate(5, seed=3)
    assert first.points.equals(second.points)
    assert first.incidents == second.incidents and first.decoys == second.decoys
    other = generate(5, seed=4)
    assert other.points.num_rows == first.points.num_rows  # the layout does not depend on the seed...
    assert not np.array_equal(other.points.column("value").to_numpy(), first.points.column("value").to_numpy())
    assert other.incidents != first.incidents  # ...the values and the incident times do


def test_points_are_metric_rows_with_canonical_tags_inside_the_span(history):
    points = history.points
    assert points.schema == METRIC_SCHEMA
    assert history.start_ms == T0 and history.end_ms == T0 + DAYS * DAY_MS
    timestamps = points.column("timestamp_ms").to_numpy()
    assert timestamps.min() >= history.start_ms and timestamps.max() < history.end_ms
    for tags in pc.unique(points.column("tags")).to_pylist():
        assert canonical_tags(json.loads(tags)) == tags
    assert sum(history.series.values()) == points.num_rows
    assert not np.isnan(points.column("value").to_numpy()).any()


def test_every_monitor_has_incidents_with_groups_of_known_tags(history):
    for monitor in mh.MONITORS:
        assert of(history, monitor), monitor
    for incident in (*history.incidents, *history.decoys):
        assert history.start_ms <= incident.start_ms < incident.end_ms <= history.end_ms, incident
        assert incident.group == canonical_tags(json.loads(incident.group))
        (name, value), = json.loads(incident.group).items()  # fmt: skip
        expected = {"drift": "model_name", "version_comparison": "model_name"}.get(incident.monitor, "endpoint_name")
        assert name == expected
        assert value in (mh.ENDPOINTS if expected == "endpoint_name" else mh.MODELS)
    for anomaly in of(history, "anomaly"):  # a per-hour baseline has had its warm-up
        assert anomaly.start_ms >= T0 + mh.ANOMALY_WARMUP_DAYS * DAY_MS


def test_incidents_of_a_group_do_not_overlap(history):
    by_group = {}
    for incident in (*history.incidents, *history.decoys):
        by_group.setdefault((incident.monitor, incident.group), []).append(incident)
    for spans in by_group.values():
        spans.sort(key=lambda i: i.start_ms)
        for before, after in itertools.pairwise(spans):
            assert before.end_ms <= after.start_ms, (before, after)


def test_drift_incidents_change_the_score_distribution_and_the_rest_does_not(history):
    for incident in of(history, "drift"):
        t, v = series(history, "gateway", "model_score", model_name=group_value(incident))
        during = between(t, v, incident.start_ms, incident.end_ms)
        day_before = between(t, v, incident.start_ms - DAY_MS, incident.end_ms - DAY_MS)
        assert len(during) == (incident.end_ms - incident.start_ms) // MINUTE_MS * mh.SCORES_PER_MINUTE
        result = stats.ks_2samp(during, day_before)
        assert result.statistic > 0.1 and result.pvalue < 1e-9, incident
    for model in mh.MODELS:  # outside the incidents: the model's stationary Beta
        t, v = series(history, "gateway", "model_score", model_name=model)
        clean = np.ones(len(t), dtype=bool)
        for incident in of(history, "drift"):
            if group_value(incident) == model:
                clean &= (t < incident.start_ms) | (t >= incident.end_ms)
        a, b = mh._BETA[model]
        assert stats.kstest(v[clean], stats.beta(a, b).cdf).pvalue > 1e-4, model


def logit(x):
    return np.log(x) - np.log1p(-x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_drift_scores_follow_the_transformed_distribution_their_kind_and_magnitude_say(history):
    seen = set()
    for incident in of(history, "drift"):
        model = group_value(incident)
        t, v = series(history, "gateway", "model_score", model_name=model)
        during = between(t, v, incident.start_ms, incident.end_ms)
        base = stats.beta(*mh._BETA[model])
        m = incident.magnitude
        if incident.kind == "mean_shift":  # logit + m

            def cdf(x, m=m, base=base):
                return base.cdf(sigmoid(logit(x) - m))
        elif incident.kind == "variance":  # (logit - c) * m + c
            c = mh.spread_centre(model)

            def cdf(x, m=m, c=c, base=base):
                return base.cdf(sigmoid((logit(x) - c) / m + c))
        else:  # a share m from the other component
            other = stats.beta(*mh.mixture_beta(model))

            def cdf(x, m=m, base=base, other=other):
                return (1 - m) * base.cdf(x) + m * other.cdf(x)

        seen.add(incident.kind)
        assert stats.kstest(during, cdf).pvalue > 1e-4, incident
        assert stats.kstest(during, base.cdf).pvalue < 1e-9, incident
    assert seen == {"mean_shift", "variance", "mixture"}


def hourly_p95(t, v):
    hours = (t - T0) // HOUR_MS
    return {int(h): float(np.percentile(v[hours == h], 95)) for h in np.unique(hours)}


def test_anomalies_are_off_their_hour_of_day_baseline_and_seasonal_ones_sit_at_the_noon_level(history):
    for incident in of(history, "anomaly"):
        t, v = series(history, "gateway", "inference_latency", endpoint_name=group_value(incident))
        p95 = hourly_p95(t, v)
        first_hour = (incident.start_ms - T0) // HOUR_MS
        baseline = np.median([p95[first_hour - 24 * d] for d in range(1, 8)])
        assert p95[first_hour] / baseline == pytest.approx(incident.magnitude, rel=0.2), incident
        assert p95[first_hour] / baseline > 2.0
        if incident.kind == "seasonal":
            assert (incident.start_ms - T0) % DAY_MS == 3 * HOUR_MS
            noon = np.median([p95[first_hour - 15 + 24 * d] for d in range(0, -7, -1)])  # 12:00 of that day and before
            assert p95[first_hour] == pytest.approx(noon, rel=0.15)
            # within the day's range: a non-seasonal baseline of the last 24 h would not flag it
            day = [p95[h] for h in range(first_hour - 24, first_hour)]
            assert p95[first_hour] < max(day) * 1.1


def test_latency_outside_anomalies_follows_the_daily_cycle(history):
    for endpoint in mh.ENDPOINTS:
        t, v = series(history, "gateway", "inference_latency", endpoint_name=endpoint)
        clean = np.ones(len(t), dtype=bool)
        for incident in of(history, "anomaly"):
            if group_value(incident) == endpoint:
                clean &= (t < incident.start_ms) | (t >= incident.end_ms)
        level = mh._ENDPOINT_SCALE[endpoint] * mh.hour_profile((t[clean] - T0) // MINUTE_MS)
        log_ratio = np.log(v[clean] / level)
        assert abs(np.mean(log_ratio)) < 0.01
        assert np.std(log_ratio) == pytest.approx(np.hypot(0.03, 0.08), rel=0.1)
        p95 = hourly_p95(t[clean], v[clean])
        by_hour = [np.median([x for h, x in p95.items() if h % 24 == hour]) for hour in range(24)]
        # lowest around 03:00 (the hours 02-03 and 03-04 are level), highest around noon
        assert int(np.argmin(by_hour)) in (2, 3) and int(np.argmax(by_hour)) in (11, 12)


def burn_rates(history, endpoint, length_min):
    """The burn rate over the trailing ``length_min`` minutes, per minute (NumPy, from the points)."""
    _, requests = series(history, "gateway", "requests", endpoint_name=endpoint)
    _, errors = series(history, "gateway", "request_errors", endpoint_name=endpoint)
    window = np.ones(length_min)
    total = np.convolve(requests, window)[: len(requests)]
    bad = np.convolve(errors, window)[: len(errors)]
    return bad / np.maximum(total, 1) / (1 - SLO_OBJECTIVE)


def test_burn_episodes_burn_at_their_rate_and_decoys_stay_below_both_workbook_pairs(history):
    for endpoint in mh.ENDPOINTS:
        t, requests = series(history, "gateway", "requests", endpoint_name=endpoint)
        _, errors = series(history, "gateway", "request_errors", endpoint_name=endpoint)
        assert (errors <= requests).all() and (requests > 0).all()
        fast = np.minimum(burn_rates(history, endpoint, 60), burn_rates(history, endpoint, 5)) >= 14.4
        slow = np.minimum(burn_rates(history, endpoint, 360), burn_rates(history, endpoint, 30)) >= 6
        pages = fast | slow
        marked = np.zeros(len(t), dtype=bool)
        for incident in (*of(history, "slo"), *of(history, "slo", decoys=True)):
            if group_value(incident) != endpoint:
                continue
            inside = (t >= incident.start_ms) & (t < incident.end_ms)
            n, bad = requests[inside].sum(), errors[inside].sum()
            expected = incident.magnitude * (1 - SLO_OBJECTIVE)
            assert bad / n == pytest.approx(expected, abs=5 * np.sqrt(expected / n)), incident  # binomial, 5 sigma
            after = (t >= incident.start_ms) & (t < incident.end_ms + HOUR_MS)
            if incident.kind in ("fast_burn", "slow_burn"):
                budget_share = incident.magnitude * (incident.end_ms - incident.start_ms) / (30 * DAY_MS)
                assert budget_share >= (0.02 if incident.kind == "fast_burn" else 0.05)
                assert (fast if incident.kind == "fast_burn" else slow)[inside].any(), incident
            marked |= after
        assert not pages[~marked].any(), endpoint  # decoys and the base rate never meet a pair's condition
        base = ~marked
        assert errors[base].sum() / requests[base].sum() == pytest.approx(mh.BASE_BURN * (1 - SLO_OBJECTIVE), rel=0.2)


def versions_of(history, model):
    table = history.points.filter(pc.and_(pc.equal(history.points.column("source"), "tensorflow_serving"),
                                          pc.equal(history.points.column("name"), "inference_latency")))  # fmt: skip
    out = {}
    for tags in pc.unique(table.column("tags")).to_pylist():
        parsed = json.loads(tags)
        if parsed["model_name"] == model:
            out[parsed["model_version"]] = series(history, "tensorflow_serving", "inference_latency", **parsed)
    return out


def test_a_version_change_starts_a_new_version_tag_that_is_worse_by_its_factor(history):
    changes = [*of(history, "version_comparison"), *of(history, "version_comparison", decoys=True)]
    assert {c.kind for c in changes} == {"worse", "not_worse"}
    for change in changes:
        versions = versions_of(history, group_value(change))
        old, new = change.detail.split(" (")[0].removeprefix("model_version ").split(" -> ")
        t_new, v_new = versions[new]
        t_old, v_old = versions[old]
        assert t_new[0] == change.start_ms  # the new tag appears at the labelled start
        # The new version's first full day against the old version's same hours the day before
        switch_ms = change.end_ms - DAY_MS
        assert t_old[-1] < switch_ms + MINUTE_MS  # the old version stopped at the switch
        new_p95 = hourly_p95(t_new, v_new)
        old_p95 = hourly_p95(t_old, v_old)
        first = (switch_ms - T0) // HOUR_MS + 1
        ratios = [new_p95[h] / old_p95[h - 24] for h in range(first, first + 23) if h - 24 in old_p95]
        assert np.median(ratios) == pytest.approx(change.magnitude, rel=0.06), change
        if change.kind == "worse":
            assert min(ratios) > 1.2
        else:
            assert max(ratios) < 1.2


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="days"):
        generate(3)
    with pytest.raises(ValueError, match="seed"):
        generate(5, seed=-1)
