"""The alert page's SVG chart (console.chart): parsed with xml.etree, geometry checked against its own axes."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from console.chart import chart_range, episode_chart, nice_ticks, time_ticks
from console.records import AlertDetail, AlertRow, ChangeMarker, SeriesPoint, Span

NS = "{http://www.w3.org/2000/svg}"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


def _points(count: int, skip: tuple[int, ...] = (), value=lambda i: 10 + (i % 5)) -> list[SeriesPoint]:
    return [SeriesPoint(T0 + i * MINUTE, float(value(i))) for i in range(count) if i not in skip]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _all(root: ET.Element, *classes: str) -> list[ET.Element]:
    return [e for e in root.iter() if set(classes) <= _classes(e)]


def _coordinates(polyline: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]


def _value_to_y(root: ET.Element):
    """The y axis as its tick labels draw it: value -> y, from two ticks."""
    ticks = [(float(t.get("data-value")), float(t.get("y"))) for t in _all(_all(root, "axis", "y")[0], "tick")]
    assert len(ticks) >= 2
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return lambda v: y0 + (v - v0) * (y1 - y0) / (v1 - v0)


def _time_to_x(root: ET.Element):
    """The x axis as its tick labels draw it: epoch ms -> x, from two ticks."""
    ticks = [(int(t.get("data-at-ms")), float(t.get("x"))) for t in _all(_all(root, "axis", "x")[0], "tick")]
    assert len(ticks) >= 2
    (t0, x0), (t1, x1) = ticks[0], ticks[-1]
    return lambda t: x0 + (t - t0) * (x1 - x0) / (t1 - t0)


def test_root_element_names_the_alert_and_is_an_image():
    root = _parse(episode_chart(_points(30), 12.0, [], [], alert_id="ep-1", unit="ms"))
    assert root.tag == f"{NS}svg"
    assert root.get("class") == "episode-chart"
    assert root.get("data-alert") == "ep-1"
    assert root.get("role") == "img"
    assert "ep-1" in root.get("aria-label") and "30 windows" in root.get("aria-label")
    assert not list(root.iter(f"{NS}script")) and not list(root.iter(f"{NS}style"))
    assert all("style" not in e.attrib for e in root.iter()), "inline style attributes break a strict CSP"


def test_series_has_one_point_per_window_at_the_axis_positions():
    points = _points(60)
    root = _parse(episode_chart(points, 12.5, [], [], alert_id="a"))
    (line,) = _all(root, "series")
    coordinates = _coordinates(line)
    assert len(coordinates) == 60 == int(line.get("data-windows"))
    x_of, y_of = _time_to_x(root), _value_to_y(root)
    for point, (x, y) in zip(points, coordinates, strict=True):
        assert x == pytest.approx(x_of(point.window_start_ms), abs=0.15)
        assert y == pytest.approx(y_of(point.value), abs=0.15)
    assert [x for x, _ in coordinates] == sorted(x for x, _ in coordinates)


def test_threshold_line_is_at_the_thresholds_y_and_inside_the_scale():
    root = _parse(episode_chart(_points(30), 37.5, [], [], alert_id="a"))  # values 10..14, threshold far above
    (threshold,) = _all(root, "threshold")
    assert float(threshold.get("data-value")) == 37.5
    assert threshold.get("y1") == threshold.get("y2")
    assert "stroke-dasharray" in threshold.attrib
    y_of = _value_to_y(root)
    assert float(threshold.get("y1")) == pytest.approx(y_of(37.5), abs=0.15)
    plot = _all(root, "plot")[0]
    top, bottom = float(plot.get("y")), float(plot.get("y")) + float(plot.get("height"))
    assert top <= float(threshold.get("y1")) <= bottom
    values = [float(t.get("data-value")) for t in _all(_all(root, "axis", "y")[0], "tick")]
    assert min(values) <= 10 and max(values) >= 37.5


def test_spans_cover_their_time_range():
    spans = [Span("pending", T0 + 10 * MINUTE, T0 + 15 * MINUTE), Span("firing", T0 + 15 * MINUTE, T0 + 40 * MINUTE)]
    root = _parse(episode_chart(_points(60), 13.0, spans, [], alert_id="a"))
    x_of = _time_to_x(root)
    (line,) = _all(root, "series")
    series_x = [x for x, _ in _coordinates(line)]
    for span in spans:
        (rect,) = _all(root, "span", span.state)
        assert int(rect.get("data-start-ms")) == span.start_ms and int(rect.get("data-end-ms")) == span.end_ms
        x, width = float(rect.get("x")), float(rect.get("width"))
        assert x == pytest.approx(x_of(span.start_ms), abs=0.15)
        assert x + width == pytest.approx(x_of(span.end_ms), abs=0.2)
        # the span starts exactly at a window: the rect's left edge is that window's point
        assert x == pytest.approx(series_x[(span.start_ms - T0) // MINUTE], abs=0.15)
    pending, firing = _all(root, "span", "pending")[0], _all(root, "span", "firing")[0]
    assert float(pending.get("x")) + float(pending.get("width")) == pytest.approx(float(firing.get("x")), abs=0.2)


def test_a_missing_window_breaks_the_line():
    root = _parse(episode_chart(_points(60, skip=(20, 21, 41)), 13.0, [], [], alert_id="a"))
    lines = _all(root, "series")
    assert [len(_coordinates(line)) for line in lines] == [20, 19, 18]
    assert [int(line.get("data-start-ms")) for line in lines] == [T0, T0 + 22 * MINUTE, T0 + 42 * MINUTE]


def test_a_lone_window_between_gaps_is_a_dot():
    root = _parse(episode_chart(_points(10, skip=(4, 6)), None, [], [], alert_id="a"))
    assert [len(_coordinates(line)) for line in _all(root, "series")] == [4, 1, 3]
    assert len(_all(root, "series-point")) == 1


def test_a_non_finite_value_breaks_the_line_and_is_not_drawn():
    points = _points(10, value=lambda i: math.nan if i == 5 else i)
    root = _parse(episode_chart(points, 3.0, [], [], alert_id="a"))
    assert [len(_coordinates(line)) for line in _all(root, "series")] == [5, 4]
    assert not re.search(r"\bnan\b", ET.tostring(root, encoding="unicode"), re.IGNORECASE)


def test_markers_are_vertical_lines_with_a_label_and_tooltip():
    markers = [ChangeMarker(T0 + 12 * MINUTE, "deploy", "fraud v12 -> Production", "mlflow")]
    root = _parse(episode_chart(_points(30), 12.0, [], markers, alert_id="a"))
    (marker,) = _all(root, "marker")
    assert marker.get("data-kind") == "deploy"
    line = marker.find(f"{NS}line")
    assert line.get("x1") == line.get("x2")
    assert float(line.get("x1")) == pytest.approx(_time_to_x(root)(T0 + 12 * MINUTE), abs=0.15)
    assert "fraud v12 -> Production" in marker.find(f"{NS}title").text
    assert marker.find(f"{NS}text").text == "deploy"


def test_hostile_text_is_escaped():
    hostile = '<script>alert(1)</script> & "quoted" \x00\x1b'
    markers = [ChangeMarker(T0 + 5 * MINUTE, '"><script>', hostile, hostile)]
    svg = episode_chart(_points(10), 12.0, [], markers, alert_id='x"><script>1</script>', unit="</text><b>")
    root = _parse(svg)  # well-formed XML although every string was hostile
    assert "<script" not in svg and "<b>" not in svg
    assert not list(root.iter(f"{NS}script"))
    assert root.get("data-alert") == 'x"><script>1</script>'
    title = _all(root, "marker")[0].find(f"{NS}title").text
    assert '<script>alert(1)</script> & "quoted" ' in title and "\x00" not in title
    assert _all(root, "marker")[0].get("data-kind") == '"><script>'


def test_empty_series_says_so():
    root = _parse(episode_chart([], 5.0, [Span("firing", T0, T0 + MINUTE)], [], alert_id="a"))
    (message,) = _all(root, "empty")
    assert message.text == "no data in this range"
    assert not _all(root, "series") and not _all(root, "threshold")
    assert "0 windows" in root.get("aria-label")


def test_x_axis_ticks_are_utc_clock_times_with_the_date_across_days():
    root = _parse(episode_chart(_points(60), None, [], [], alert_id="a"))
    labels = [t.text for t in _all(_all(root, "axis", "x")[0], "tick")]
    assert labels[0] == "00:00" and all(len(label) == 5 and label[2] == ":" for label in labels)
    hourly = [SeriesPoint(T0 - 20 * 3_600_000 + i * 3_600_000, 1.0) for i in range(48)]  # Dec 31 04:00 .. Jan 2
    root = _parse(episode_chart(hourly, None, [], [], alert_id="a"))
    labels = [t.text for t in _all(_all(root, "axis", "x")[0], "tick")]
    assert labels[0].startswith("Dec 31 ")
    assert any(label.startswith("Jan 01 ") for label in labels) and any(label.startswith("Jan 02") for label in labels)


def test_legend_lists_what_is_drawn():
    spans = [Span("firing", T0, T0 + 5 * MINUTE)]
    markers = [ChangeMarker(T0, "push", "main", "github")]
    root = _parse(episode_chart(_points(10), 12.0, spans, markers, alert_id="a", unit="ms"))
    texts = [t.text for t in _all(root, "legend")[0].iter(f"{NS}text")]
    assert texts == ["value (ms)", "threshold", "firing", "change"]


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="width"):
        episode_chart(_points(3), None, [], [], alert_id="a", width=10)


@pytest.mark.parametrize(
    ("low", "high"), [(0, 6), (0.1, 0.37), (-3, 1e6), (5, 5), (0, 0), (-0.002, -0.001), (997, 1003)]
)
def test_nice_ticks_cover_the_range_with_round_steps(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    assert 2 <= len(ticks) <= 12
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    (step,) = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)


def test_time_ticks_are_aligned_to_round_utc_steps():
    step, ticks = time_ticks(T0 + 7 * MINUTE, T0 + 3 * 3_600_000)
    assert step == 30 * MINUTE
    assert ticks[0] == T0 + 30 * MINUTE and all(t % step == 0 for t in ticks)


def test_chart_range_pads_the_episode_and_stops_at_now():
    row = AlertRow(
        id="a", rule="r", name="n", severity="high", state="firing", summary="", model_id="m", environment="prod",
        team="", source="s", metric="latency", group={}, starts_at_ms=T0, last_at_ms=T0 + 10 * MINUTE,
        resolved_at_ms=None, current_value=1.0, peak_value=2.0, threshold=1.5,
    )  # fmt: skip
    detail = AlertDetail(row, "", "threshold", {}, {}, "", "mean", 60)
    assert chart_range(detail, T0 + 20 * MINUTE) == (T0 - 30 * MINUTE, T0 + 20 * MINUTE)
    assert chart_range(detail, T0 + 3 * 3_600_000) == (T0 - 30 * MINUTE, T0 + 40 * MINUTE)
