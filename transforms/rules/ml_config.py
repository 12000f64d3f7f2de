"""Config of the ML monitors: ``type: drift``, ``anomaly``, ``slo`` and ``version_comparison``.

Each computes a score per rule window from the group's history and compares it with ``threshold`` like a
threshold rule (``comparator``, ``for``, ``recovery_threshold``, ``keep_firing_for``, ``repeat_interval``
mean the same; :class:`~transforms.rules.config.ConditionRule`). How the scores are computed:
:mod:`transforms.rules.scored`. ::

    rules:
      - name: score_drift
        type: drift
        metric: model_score              # its per-window distributions (DDSketch, kept by the aggregation)
        # histogram: true                # or a Prometheus histogram: metric <family>_bucket_increase
        group_by: [model_name]
        window: 1h
        method: psi                      # psi | ks | js
        reference: {type: rolling, offset: 1d, length: 1d}
        #          {type: fixed, start: 2026-11-01T00:00:00Z, end: 2026-11-08T00:00:00Z}
        #          {type: previous_version, version_tag: model_version, length: 1d}
        threshold: 0.25
        for: 2
        severity: warning
      - name: latency_anomaly
        type: anomaly
        metric: inference_latency
        aggregation: p95
        window: 1h
        detector: robust_zscore          # zscore | robust_zscore | iqr (apache_beam.ml.anomaly)
        seasonality: hour_of_day         # hour_of_week, or none
        history: 14                      # past values per season slot the detector learns from
        min_history: 7
        threshold: 3.5
        severity: warning
      - name: availability_slo
        type: slo
        metric: requests                 # total events per window (delta counts)
        bad_metric: request_errors       # or good_metric
        objective: 0.999
        period: 30d
        burn_windows:                    # default: the SRE workbook's pages
          - {long: 1h, short: 5m, burn_rate: 14.4}
          - {long: 6h, short: 30m, burn_rate: 6}
        severity: critical
      - name: new_version_latency
        type: version_comparison
        metric: inference_latency
        aggregation: p95
        version_tag: model_version
        group_by: [model_name]
        window: 1h
        threshold: 0.2                   # the new version 20 % worse than the previous one
        severity: warning
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airis_mon.durations import Duration
from airis_mon.timeutil import to_epoch_ms
from transforms.rules.rule_base import AGGREGATIONS, ConditionRule

__all__ = [
    "SCORE_ALERT_TYPES",
    "AnomalyRule",
    "BurnWindowConfig",
    "DriftReference",
    "DriftRule",
    "SloRule",
    "VersionComparisonRule",
]


SCORE_ALERT_TYPES = frozenset({"drift", "anomaly", "slo", "version_comparison"})
"""Alert types whose ``current_value`` and ``threshold`` are scores, not the metric's statistic."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DriftReference(_Strict):
    """What the current window's distribution is compared with.

    - ``rolling``: the windows in ``[start - offset - length, start - offset)`` (default: the same hours the
      day before: offset 1d, length 1d... i.e. the previous day);
    - ``fixed``: the windows in ``[start, end)`` (ISO-8601 or epoch), merged once and kept;
    - ``previous_version``: the last ``length`` of windows served by the version before the current one
      (the ``version_tag`` of the series; see :class:`VersionComparisonRule`).
    """

    type: Literal["rolling", "fixed", "previous_version"] = "rolling"
    offset: Duration = Field(default=0, description="rolling: gap between the reference's end and the window, s")
    length: Duration = Field(default=86_400, description="rolling, previous_version: span of the reference, s")
    start: str | int | None = Field(default=None, description="fixed: start of the baseline (inclusive)")
    end: str | int | None = Field(default=None, description="fixed: end of the baseline (exclusive)")
    version_tag: str = Field(default="model_version", description="previous_version: the tag naming the version")

    @model_validator(mode="after")
    def _fixed_has_a_period(self) -> DriftReference:
        if self.type == "fixed":
            if self.start is None or self.end is None:
                raise ValueError("a fixed reference needs start and end")
            if self.end_ms <= self.start_ms:
                raise ValueError("end must be after start")
        if self.length <= 0:
            raise ValueError("length must be positive")
        return self

    @property
    def start_ms(self) -> int:
        """Fixed reference start, epoch ms."""
        return to_epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        """Fixed reference end (exclusive), epoch ms."""
        return to_epoch_ms(self.end)


class DriftRule(ConditionRule):
    """Fires when the distribution of ``metric`` in the rule window drifts from a reference, by PSI,
    Kolmogorov–Smirnov or Jensen–Shannon (:mod:`transforms.drift`)."""

    type: Literal["drift"] = "drift"
    method: Literal["psi", "ks", "js"] = "psi"
    reference: DriftReference = Field(default_factory=DriftReference)
    bins: int = Field(default=10, ge=2, le=100, description="psi, js: buckets cut at the reference's quantiles")
    min_count: int = Field(default=100, ge=1, description="points needed in the window and in the reference")
    histogram: bool = Field(
        default=False,
        description="metric is a Prometheus histogram's <family>_bucket_increase (prometheus source with "
        "bucket_increases: true): the distribution is its buckets, not a DDSketch",
    )
    alert_type: str = "drift"

    @model_validator(mode="after")
    def _version_not_grouped(self) -> DriftRule:
        tag = self.reference.version_tag
        if self.reference.type == "previous_version" and self.group_by is not None and tag in self.group_by:
            raise ValueError(f"group_by must not hold the version tag {tag!r}: versions are compared within a group")
        return self

    @property
    def statistic(self) -> str:
        return self.method


class AnomalyRule(ConditionRule):
    """Fires when a window statistic is anomalous for one of Beam's detectors (``apache_beam.ml.anomaly``),
    learned from the group's past values, optionally per season slot (:mod:`transforms.rules.anomaly`)."""

    type: Literal["anomaly"] = "anomaly"
    aggregation: Literal[AGGREGATIONS]
    detector: Literal["zscore", "robust_zscore", "iqr"] = "zscore"
    seasonality: Literal["hour_of_day", "hour_of_week"] | None = None
    history: int = Field(default=60, ge=2, description="past values (per season slot) the detector learns from")
    min_history: int = Field(default=10, ge=2, description="past values needed before scoring")
    threshold: float = 3.0
    alert_type: str = "anomaly"

    @model_validator(mode="after")
    def _history_fits(self) -> AnomalyRule:
        if self.min_history > self.history:
            raise ValueError(f"min_history {self.min_history} is more than history {self.history}")
        return self

    @property
    def statistic(self) -> str:
        return f"{self.aggregation} {self.detector} score"


class BurnWindowConfig(_Strict):
    """One multiwindow condition: the burn rate over ``long`` and over ``short`` both at least ``burn_rate``."""

    long: Duration
    short: Duration
    burn_rate: float = Field(gt=0)

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindowConfig:
        if not 0 < self.short < self.long:
            raise ValueError("short must be positive and shorter than long")
        return self


DEFAULT_BURN_WINDOWS = (
    BurnWindowConfig(long=3600, short=300, burn_rate=14.4),
    BurnWindowConfig(long=21_600, short=1800, burn_rate=6.0),
)


class SloRule(ConditionRule):
    """Fires on the SRE workbook's multiwindow, multi-burn-rate conditions for an SLO of ``objective`` over
    ``period``, from a total metric (``metric``) and a good or a bad one; stores the error budget remaining
    as the metric ``slo_error_budget_remaining`` (:mod:`transforms.rules.slo`).

    The compared value is ``max over burn_windows of min(long burn, short burn) / burn_rate``: 1 means some
    pair reached its burn rate on both windows, hence the defaults ``comparator: ">="``, ``threshold: 1``.
    """

    type: Literal["slo"] = "slo"
    good_metric: str | None = None
    bad_metric: str | None = None
    objective: float = Field(gt=0, lt=1, description="e.g. 0.999 for 99.9 %")
    period: Duration = Field(default=30 * 86_400, description="the SLO window, s")
    burn_windows: tuple[BurnWindowConfig, ...] = DEFAULT_BURN_WINDOWS
    comparator: Literal[">", ">=", "<", "<="] = ">="
    threshold: float = 1.0
    alert_type: str = "slo"

    @field_validator("objective", mode="before")
    @classmethod
    def _a_ratio(cls, value: object) -> object:
        if isinstance(value, int | float) and 1 <= value < 100:
            raise ValueError(f"a ratio in (0, 1): for {value:g} % write {value / 100:g}")
        return value

    @model_validator(mode="after")
    def _one_of_good_or_bad(self) -> SloRule:
        if (self.good_metric is None) == (self.bad_metric is None):
            raise ValueError("set exactly one of good_metric or bad_metric")
        if not self.burn_windows:
            raise ValueError("burn_windows: at least one")
        return self

    @property
    def statistic(self) -> str:
        return "burn rate"

    @property
    def metrics(self) -> tuple[str, str]:
        """(total metric, good or bad metric)."""
        return self.metric, self.good_metric or self.bad_metric or ""


class VersionComparisonRule(ConditionRule):
    """Fires when the current model version is worse than the previous one over matched periods.

    The version of a series is its ``version_tag`` tag (what served the requests; the registry's version
    and alias events say what was promoted). Each rule window of the current version is compared with the
    previous version in the same window when both served it (a canary, a gradual rollout), else with the
    previous version's window ``match_offset`` earlier (the same hours the day before), for
    ``compare_for`` after the current version first appeared. The value is the relative change,
    ``(current - previous) / |previous|`` (sign flipped when ``higher_is_worse`` is false): 0.2 = 20 % worse.
    With ``denominator`` the compared value is ``sum(metric) / sum(denominator)`` (an error rate).
    """

    type: Literal["version_comparison"] = "version_comparison"
    aggregation: Literal[AGGREGATIONS] = "mean"
    denominator: str | None = Field(
        default=None,
        description="compare sum(metric) / sum(denominator) per version and window instead of a statistic: "
        "an error rate (errors / requests)",
    )
    version_tag: str = "model_version"
    higher_is_worse: bool = True
    match_offset: Duration = Field(default=86_400, description="previous version matched this much earlier, s")
    compare_for: Duration = Field(default=7 * 86_400, description="compare this long after a version appears, s")
    min_count: int = Field(default=1, ge=1, description="points each version needs in a window")
    alert_type: str = "version_comparison"

    @model_validator(mode="after")
    def _version_not_grouped(self) -> VersionComparisonRule:
        if self.group_by is not None and self.version_tag in self.group_by:
            raise ValueError(f"group_by must not hold the version tag {self.version_tag!r}: versions are compared "
                             "within a group")  # fmt: skip
        return self

    @property
    def statistic(self) -> str:
        measured = f"{self.metric}/{self.denominator}" if self.denominator else self.aggregation
        return f"{measured} change vs previous version"
