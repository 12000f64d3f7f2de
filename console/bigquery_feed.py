"""``BigQueryFeed``: the console's index fed from the BigQuery tables of the pipeline's storage (GCP).

On GCP the pipeline appends its outputs to BigQuery (:mod:`sinks.bigquery`: tables ``PREFIXkind`` of
``project.dataset``, the Parquet kinds' columns plus ``event_time`` TIMESTAMP, day-partitioned, and ``run_key``).
The feed pulls, per kind the index holds that BigQuery has (:data:`FEED_KINDS`: aggregates, alerts, events,
health), the rows at or after a time, with one query of this shape::

    SELECT <the kind's Parquet columns>, run_key FROM `project.dataset.PREFIXkind`
    WHERE event_time >= @since ORDER BY event_time

(``@since`` a TIMESTAMP query parameter) through the official client's ``query_and_wait`` (the REST
``jobs.query`` call; rows over JSON, no BigQuery Storage API). :meth:`console.index.ParquetIndex.refresh` asks
for the rows from its newest row of the kind minus :attr:`BigQueryFeed.overlap_ms` (the first time: the last
:attr:`BigQueryFeed.lookback_ms`) and replaces its rows of that range with the answer, so rows that arrive out
of order within the overlap are picked up and nothing is counted twice. A row landing later than the overlap
behind the newest row (a backfill of old data) is not seen until the index is rebuilt (delete its file).

Duplicates: BigQuery appends, so a re-run of the same input stores its rows again (same ``run_key``; see
:mod:`sinks.bigquery.transform`). The feed keeps one row per natural key (:data:`KEYS`: aggregates by window,
source, name, unit and tags; alerts by ``id``, ``notification`` and ``timestamp_ms``; events by all their
columns; health by ``timestamp_ms`` and ``integration``): the one of the smallest ``run_key`` (copies of a
re-run are identical). Non-finite floats are NULL on BigQuery (the sink stores them so), NaN in Parquet.

Errors: any failure of a query (HTTP 4xx/5xx, a refused connection, a timeout, no credentials) raises
:class:`BigQueryFeedError` naming the table and BigQuery's message; the index is left as it was (the pull happens
before any write).
Credentials: the client's (Application Default Credentials unless a ``client`` is given); none are logged.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from airis_mon.arrowutil import conform
from sinks.parquet.transform import PARQUET_KINDS

__all__ = ["DEFAULT_LOOKBACK_MS", "DEFAULT_OVERLAP_MS", "FEED_KINDS", "KEYS", "BigQueryFeed", "BigQueryFeedError"]

#: The index's kinds that BigQuery has (no ``alert_states`` there).
FEED_KINDS = ("aggregates", "alerts", "events", "health")
#: kind -> the columns one stored record is identified by (duplicates of a re-run share them).
KEYS: dict[str, tuple[str, ...]] = {
    "aggregates": ("window_start_ms", "window_end_ms", "source", "name", "unit", "tags"),
    "alerts": ("id", "notification", "timestamp_ms"),
    "events": ("timestamp_ms", "event_type", "source", "severity", "data"),
    "health": ("timestamp_ms", "integration"),
}
#: Rows are re-read from this long before the newest row held (ms): 1 hour.
DEFAULT_OVERLAP_MS = 3_600_000
#: The first pull reads this far back (ms): 7 days.
DEFAULT_LOOKBACK_MS = 7 * 86_400_000


class BigQueryFeedError(RuntimeError):
    """A query of the feed failed (the message names the table and BigQuery's reason)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class BigQueryFeed:
    """Rows of the pipeline's BigQuery tables for :class:`console.index.ParquetIndex` (see the module docstring).

    ``project``, ``dataset``, ``table_prefix``: where the tables are (``project.dataset.PREFIXkind``);
    ``client``: a ``google.cloud.bigquery.Client`` (default: one for ``project`` with the environment's
    credentials); ``overlap_ms``, ``lookback_ms``: see the module docstring; ``timeout_s``: the longest one
    query may take, retries included, s.
    """

    kinds = FEED_KINDS

    def __init__(
        self,
        project: str,
        dataset: str,
        table_prefix: str = "airis_mon_",
        client: object | None = None,
        overlap_ms: int = DEFAULT_OVERLAP_MS,
        lookback_ms: int = DEFAULT_LOOKBACK_MS,
        timeout_s: float = 60.0,
    ):
        for name, value in (("project", project), ("dataset", dataset), ("table_prefix", table_prefix)):
            if not isinstance(value, str) or any(c in value for c in "`\\\n") or (name != "table_prefix" and not value):
                raise ValueError(f"{name}: a BigQuery name (no backquote), got {value!r}")
        for name, value in (("overlap_ms", overlap_ms), ("lookback_ms", lookback_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: ms (an integer >= 0), got {value!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s: > 0 s, got {timeout_s!r}")
        self.project, self.dataset, self.table_prefix = project, dataset, table_prefix
        self.overlap_ms, self.lookback_ms, self.timeout_s = overlap_ms, lookback_ms, timeout_s
        self._client = client

    @property
    def source_id(self) -> str:
        """Names where the rows come from (the index forgets rows of another source): ``bigquery:P.D.PREFIX``."""
        return f"bigquery:{self.project}.{self.dataset}.{self.table_prefix}"

    def table(self, kind: str) -> str:
        """The table of ``kind``: ``project.dataset.PREFIXkind``."""
        if kind not in FEED_KINDS:
            raise ValueError(f"kind: one of {', '.join(FEED_KINDS)}, got {kind!r}")
        return f"{self.project}.{self.dataset}.{self.table_prefix}{kind}"

    def sql(self, kind: str) -> str:
        """The one query the feed sends for ``kind`` (``@since``: a TIMESTAMP parameter)."""
        columns = ", ".join(f"`{name}`" for name in PARQUET_KINDS[kind][0].names)
        return f"SELECT {columns}, `run_key` FROM `{self.table(kind)}` WHERE event_time >= @since ORDER BY event_time"

    def _bigquery(self):
        if self._client is None:
            from google.cloud import bigquery

            self._client = bigquery.Client(project=self.project)
        return self._client

    def pull(self, kind: str, since_ms: int) -> pa.Table:
        """The rows of ``kind`` whose time column is at or after ``since_ms`` (epoch ms), one per key (:data:`KEYS`),
        in time order, as an Arrow table of exactly ``PARQUET_KINDS[kind]``'s schema. Raises
        :class:`BigQueryFeedError` when the query fails."""
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import bigquery

        table = self.table(kind)
        if isinstance(since_ms, bool) or not isinstance(since_ms, int):
            raise ValueError(f"since_ms: epoch ms (an integer), got {since_ms!r}")
        since = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc)
        config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)])
        try:
            rows = self._bigquery().query_and_wait(
                self.sql(kind),
                job_config=config,
                api_timeout=self.timeout_s,
                wait_timeout=self.timeout_s,
                retry=bigquery.DEFAULT_RETRY.with_timeout(self.timeout_s),
                job_retry=None,
            )
            answer = rows.to_arrow(create_bqstorage_client=False)
        except (GoogleAPIError, GoogleAuthError, OSError) as error:  # auth: no credentials found, or refused
            last = getattr(error, "cause", None)  # a RetryError (retried 5xx until timeout_s): the last failure
            retried = f" after retrying for {self.timeout_s:g} s" if last is not None else ""
            last = last if last is not None else error
            reason = getattr(last, "message", None) or str(last) or type(last).__name__
            code = getattr(last, "code", None)
            raise BigQueryFeedError(
                f"BigQuery query of `{table}` failed{retried}" + (f" (HTTP {code})" if code else "") + f": {reason}"
            ) from None
        return _deduplicate(answer, kind)


def _deduplicate(answer: pa.Table, kind: str) -> pa.Table:
    """One row per key of ``kind`` (the smallest run_key), in time order, conformed to the Parquet schema."""
    schema, time_column = PARQUET_KINDS[kind]
    missing = [name for name in [*schema.names, "run_key"] if name not in answer.column_names]
    if missing:
        raise BigQueryFeedError(f"BigQuery answer for {kind} lacks columns {', '.join(missing)}")
    conformed = conform(answer, schema).append_column("run_key", answer.column("run_key").cast(pa.string()))
    conn = duckdb.connect(":memory:")
    try:
        conn.register("answer", conformed)
        columns = ", ".join(_quote(name) for name in schema.names)
        keys = ", ".join(_quote(name) for name in KEYS[kind])
        result = conn.sql(
            f"SELECT {columns} FROM answer QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY run_key) = 1"
            f" ORDER BY {_quote(time_column)}"
        ).to_arrow_table()
    finally:
        conn.close()
    return conform(result, schema)
