"""The alert page's chart: one episode's series, its threshold, its pending and firing stretches and what
changed nearby, as one self-contained inline SVG (no script, no external font or stylesheet: the page's
Content-Security-Policy allows neither). Colours are presentation attributes that the page's stylesheet can
override through the classes::

    svg.episode-chart            the root (data-alert = the episode id)
      .series                    one <polyline> per run of consecutive windows (a missing window breaks it)
      .series-point              a lone window between two gaps (a dot: a one-point line draws nothing)
      .threshold                 the dashed horizontal line (data-value = the threshold)
      .span.pending/.span.firing shaded stretches (data-start-ms, data-end-ms: epoch ms)
      .marker                    a vertical line per change (data-kind, data-at-ms) with a <title> tooltip
      .axis, .tick, .grid        axes, tick labels, grid lines
      .legend, .empty            the legend; the "no data in this range" message

Times are epoch ms UTC; the x axis is labelled in UTC (``HH:MM``, with the date when the range spans days).
Every text (titles, units, ids) is escaped; characters XML cannot carry are dropped.

Usage::

    svg = episode_chart(store.series(detail, start, end), detail.alert.threshold, store.spans(detail),
                        store.changes(detail, start, end), alert_id=detail.alert.id)
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from console.records import AlertDetail, ChangeMarker, SeriesPoint, Span

__all__ = ["chart_range", "episode_chart", "nice_ticks", "time_ticks"]

_MARGIN_LEFT = 64
_MARGIN_RIGHT = 16
_MARGIN_TOP = 30  # the legend
_MARGIN_BOTTOM = 40  # tick labels and the axis title
_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_TIME_STEPS = (
    _MINUTE,
    2 * _MINUTE,
    5 * _MINUTE,
    10 * _MINUTE,
    15 * _MINUTE,
    30 * _MINUTE,
    _HOUR,
    2 * _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    _DAY,
    2 * _DAY,
    7 * _DAY,
    14 * _DAY,
    30 * _DAY,
)
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_KIND_LABELS = {"model_version": "model", "deploy": "deploy", "ci_run": "CI", "push": "push"}
_COLOURS = {
    "series": "#1f6feb",
    "threshold": "#cf222e",
    "pending": "#d4a72c",
    "firing": "#cf222e",
    "marker": "#6e7781",
    "axis": "#57606a",
    "grid": "#d0d7de",
    "text": "#24292f",
}


def _text(value: object) -> str:
    """``value`` as XML character data or attribute text: escaped, characters XML forbids dropped."""
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def _num(value: float) -> str:
    """A coordinate, 0.1 px precision."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def chart_range(detail: AlertDetail, now_ms: int) -> tuple[int, int]:
    """The time range (epoch ms) the alert page and the API chart by default: from 30 minutes (or 15
    windows, whichever is longer) before the episode started to as long after it ended (or after its newest
    notification while it is open), never past ``now_ms`` (epoch ms) when that is later than its start."""
    pad = max(30 * _MINUTE, 15 * detail.window_s * 1000)
    alert = detail.alert
    end = (alert.resolved_at_ms or alert.last_at_ms) + pad
    if now_ms > alert.starts_at_ms:
        end = min(end, max(now_ms, alert.last_at_ms))
    return alert.starts_at_ms - pad, end


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten apart) covering ``[low, high]``: the
    first is <= ``low``, the last >= ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("nice_ticks: low and high must be finite")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 1e-9 or not ticks:
        ticks.append(round(value, 12))
        value = first + step * len(ticks)
    if ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + step * len(ticks), 12))
    return ticks


def time_ticks(start_ms: int, end_ms: int, count: int = 7) -> tuple[int, list[int]]:
    """``(step, ticks)``: a round UTC step (1 min ... 30 days, ms) giving at most about ``count`` ticks over
    ``[start_ms, end_ms]`` and the tick times (epoch ms) that fall inside, aligned to the step in UTC."""
    span = max(end_ms - start_ms, 1)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    first = -(-start_ms // step) * step
    return step, list(range(first, end_ms + 1, step))


def _tick_label(at_ms: int, step: int, previous_day: str | None, multi_day: bool) -> tuple[str, str]:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc)
    day = moment.strftime("%Y-%m-%d")
    if step >= _DAY:
        return moment.strftime("%b %d"), day
    clock = moment.strftime("%H:%M")
    if multi_day and day != previous_day:
        return f"{moment.strftime('%b %d')} {clock}", day
    return clock, day


def _value_label(value: float, step: float) -> str:
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if step * 10**decimals % 1 > 1e-9:  # 2.5 steps need one more digit
        decimals += 1
    return f"{value:.{min(decimals, 6)}f}"


def _window_ms(points: Sequence[SeriesPoint]) -> int | None:
    """The most common distance between consecutive windows (ms): the series' step."""
    gaps = Counter(b.window_start_ms - a.window_start_ms for a, b in itertools.pairwise(points))
    positive = {gap: n for gap, n in gaps.items() if gap > 0}
    if not positive:
        return None
    best = max(positive.values())
    return min(gap for gap, n in positive.items() if n == best)


def _runs(points: Sequence[SeriesPoint], window_ms: int | None) -> list[list[SeriesPoint]]:
    """The series split where a window is missing (a step longer than 1.5 windows) or a value is not finite."""
    runs: list[list[SeriesPoint]] = []
    current: list[SeriesPoint] = []
    previous: SeriesPoint | None = None
    for point in points:
        if not math.isfinite(point.value):
            if current:
                runs.append(current)
            current, previous = [], None
            continue
        if previous is not None and window_ms and point.window_start_ms - previous.window_start_ms > 1.5 * window_ms:
            runs.append(current)
            current = []
        current.append(point)
        previous = point
    if current:
        runs.append(current)
    return runs


def episode_chart(
    points: Sequence[SeriesPoint],
    threshold: float | None,
    spans: Sequence[Span],
    markers: Sequence[ChangeMarker],
    *,
    alert_id: str,
    unit: str = "",
    width: int = 900,
    height: int = 320,
    window_ms: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> str:
    """The episode chart as an SVG document fragment (``<svg class="episode-chart" ...>``).

    ``points``: one per window (``window_start_ms`` epoch ms), in any order; a missing window breaks the line.
    ``window_ms``: the window length (ms), inferred from the points when None. ``threshold``: drawn and kept
    inside the value scale. ``spans``/``markers``: shaded stretches and change lines, clipped to the range.
    ``start_ms``/``end_ms``: the time range drawn (epoch ms); by default the points', spans' and markers'.
    ``width``/``height``: px (the viewBox; the SVG scales with its container).
    """
    if width < 200 or height < 120:
        raise ValueError("episode_chart: width must be >= 200 and height >= 120 (px)")
    points = sorted(points, key=lambda p: p.window_start_ms)
    finite = [p for p in points if math.isfinite(p.value)]
    window_ms = window_ms or _window_ms(points)
    label = f"Alert {alert_id}: {len(finite)} windows"
    if threshold is not None and math.isfinite(threshold):
        label += f", threshold {threshold:g}{(' ' + unit) if unit else ''}"
    else:
        threshold = None
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="episode-chart" data-alert="{_text(alert_id)}" role="img"'
        f' aria-label="{_text(label)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' font-family="sans-serif" font-size="11">'
    )
    out = [head, f"<title>{_text(label)}</title>"]
    left, right = _MARGIN_LEFT, width - _MARGIN_RIGHT
    top, bottom = _MARGIN_TOP, height - _MARGIN_BOTTOM
    out.append(
        f'<rect class="plot" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"'
        f' fill="none" stroke="{_COLOURS["grid"]}"/>'
    )
    out.extend(_legend(left, threshold is not None, spans, markers, unit))
    if not finite:
        out.append(
            f'<text class="empty" x="{_num((left + right) / 2)}" y="{_num((top + bottom) / 2)}"'
            f' text-anchor="middle" font-size="14" fill="{_COLOURS["axis"]}">no data in this range</text>'
        )
        out.append("</svg>")
        return "".join(out)

    # The time range.
    times = [p.window_start_ms for p in finite]
    t0 = min([*times, *(s.start_ms for s in spans), *(m.at_ms for m in markers)]) if start_ms is None else start_ms
    t1 = max([*times, *(s.end_ms for s in spans), *(m.at_ms for m in markers)]) if end_ms is None else end_ms
    if t1 <= t0:
        pad = window_ms or 30 * _MINUTE
        t0, t1 = t0 - pad, t1 + pad

    def x_of(at_ms: float) -> float:
        return left + (at_ms - t0) / (t1 - t0) * (right - left)

    # The value range: the points, and the threshold.
    values = [p.value for p in finite] + ([threshold] if threshold is not None else [])
    ticks = nice_ticks(min(values), max(values))
    v0, v1 = ticks[0], ticks[-1]
    value_step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def y_of(value: float) -> float:
        return bottom - (value - v0) / (v1 - v0) * (bottom - top)

    out.append(f'<g class="axis y" data-min="{v0!r}" data-max="{v1!r}">')
    for tick in ticks:
        y = _num(y_of(tick))
        out.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="{_COLOURS["grid"]}"'
            ' stroke-width="0.5"/>'
        )
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle"'
            f' fill="{_COLOURS["axis"]}" data-value="{tick!r}">{_text(_value_label(tick, value_step))}</text>'
        )
    if unit:
        out.append(
            f'<text class="axis-title" x="12" y="{_num((top + bottom) / 2)}" text-anchor="middle"'
            f' transform="rotate(-90 12 {_num((top + bottom) / 2)})" fill="{_COLOURS["axis"]}">{_text(unit)}</text>'
        )
    out.append("</g>")

    step, time_marks = time_ticks(t0, t1)
    multi_day = (
        datetime.fromtimestamp(t0 / 1000, tz=timezone.utc).date()
        != datetime.fromtimestamp(t1 / 1000, tz=timezone.utc).date()
    )
    out.append(f'<g class="axis x" data-start-ms="{t0}" data-end-ms="{t1}">')
    previous_day = None
    for at in time_marks:
        x = _num(x_of(at))
        text, previous_day = _tick_label(at, step, previous_day, multi_day)
        out.append(
            f'<line class="grid" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}" stroke="{_COLOURS["grid"]}"'
            ' stroke-width="0.5"/>'
        )
        out.append(
            f'<text class="tick" x="{x}" y="{bottom + 14}" text-anchor="middle" fill="{_COLOURS["axis"]}"'
            f' data-at-ms="{at}">{_text(text)}</text>'
        )
    out.append(
        f'<text class="axis-title" x="{right}" y="{bottom + 32}" text-anchor="end" fill="{_COLOURS["axis"]}">UTC</text>'
    )
    out.append("</g>")

    # Shaded stretches, under the line.
    for span in sorted(spans, key=lambda s: (s.start_ms, s.state)):
        a, b = max(span.start_ms, t0), min(span.end_ms, t1)
        if b < a:
            continue
        state = "firing" if span.state == "firing" else "pending"
        x1, x2 = x_of(a), x_of(b)
        out.append(
            f'<rect class="span {state}" data-start-ms="{span.start_ms}" data-end-ms="{span.end_ms}"'
            f' x="{_num(x1)}" y="{top}" width="{_num(max(x2 - x1, 0.0))}" height="{bottom - top}"'
            f' fill="{_COLOURS[state]}" fill-opacity="0.15"><title>{_text(state)}: {_text(_clock(span.start_ms))}'
            f" to {_text(_clock(span.end_ms))} UTC</title></rect>"
        )

    if threshold is not None:
        y = _num(y_of(threshold))
        out.append(
            f'<line class="threshold" data-value="{threshold!r}" x1="{left}" x2="{right}" y1="{y}" y2="{y}"'
            f' stroke="{_COLOURS["threshold"]}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>threshold {_text(f'{threshold:g}')}{(' ' + _text(unit)) if unit else ''}</title></line>"
        )

    for run in _runs(points, window_ms):
        coordinates = " ".join(f"{_num(x_of(p.window_start_ms))},{_num(y_of(p.value))}" for p in run)
        out.append(
            f'<polyline class="series" data-windows="{len(run)}" data-start-ms="{run[0].window_start_ms}"'
            f' points="{coordinates}" fill="none" stroke="{_COLOURS["series"]}" stroke-width="2"'
            ' stroke-linejoin="round"/>'
        )
        if len(run) == 1:
            x, y = coordinates.split(",")
            out.append(f'<circle class="series-point" cx="{x}" cy="{y}" r="2.5" fill="{_COLOURS["series"]}"/>')

    for index, marker in enumerate(sorted(markers, key=lambda m: m.at_ms)):
        if not t0 <= marker.at_ms <= t1:
            continue
        x = _num(x_of(marker.at_ms))
        short = _KIND_LABELS.get(marker.kind, marker.kind)[:12]
        label_y = top + 10 + 12 * (index % 3)
        out.append(
            f'<g class="marker" data-kind="{_text(marker.kind)}" data-at-ms="{marker.at_ms}">'
            f"<title>{_text(marker.title)} ({_text(marker.kind)}, {_text(marker.source)},"
            f" {_text(_clock(marker.at_ms))} UTC)</title>"
            f'<line x1="{x}" x2="{x}" y1="{top}" y2="{bottom}" stroke="{_COLOURS["marker"]}" stroke-width="1"'
            ' stroke-dasharray="2 2"/>'
            f'<text x="{x}" dx="3" y="{label_y}" fill="{_COLOURS["text"]}" font-size="10">{_text(short)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _clock(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _legend(left: int, threshold: bool, spans: Sequence[Span], markers: Sequence[ChangeMarker], unit: str) -> list[str]:
    entries = [("series", f"value{(' (' + unit + ')') if unit else ''}", "line")]
    if threshold:
        entries.append(("threshold", "threshold", "dash"))
    states = {s.state for s in spans}
    entries += [(state, state, "box") for state in ("pending", "firing") if state in states]
    if markers:
        entries.append(("marker", "change", "dots"))
    out = ['<g class="legend">']
    x = left
    for key, text, shape in entries:
        colour = _COLOURS[key]
        if shape == "box":
            out.append(
                f'<rect class="legend-{key}" x="{x}" y="8" width="14" height="10" fill="{colour}" fill-opacity="0.3"/>'
            )
        else:
            dash = {"dash": ' stroke-dasharray="6 4"', "dots": ' stroke-dasharray="2 2"'}.get(shape, "")
            out.append(
                f'<line class="legend-{key}" x1="{x}" x2="{x + 14}" y1="13" y2="13" stroke="{colour}"'
                f' stroke-width="2"{dash}/>'
            )
        out.append(f'<text x="{x + 18}" y="17" fill="{_COLOURS["text"]}">{_text(text)}</text>')
        x += 18 + 7 * len(text) + 16
    out.append("</g>")
    return out
