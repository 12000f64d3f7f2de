"""Config of the ``bigquery`` storage sink.

::

    sinks:
      - name: warehouse
        type: bigquery
        project: my-project
        dataset: airis_mon              # must exist; tables are created in it
        table_prefix: airis_mon_        # tables airis_mon_metrics, _aggregates, _events, _alerts, _dead_letters
        write_method: FILE_LOADS        # or STREAMING_INSERTS
        triggering_frequency_s: 300     # streaming FILE_LOADS: one load job per table every 300 s
        create_disposition: CREATE_IF_NEEDED
        partition_expiration_days: 400  # optional: drop day partitions older than this
        kms_key: projects/p/locations/eu/keyRings/r/cryptoKeys/k   # optional CMEK for created tables

No secrets: the job's Google credentials (on Dataflow, the worker service
account, which needs BigQuery Data Editor on the dataset and Job User on the
project) do the writing. FILE_LOADS stages files under the pipeline's
``--temp_location`` (a ``gs://`` path).

``write_method`` (see :mod:`sinks.bigquery.transform` for what each does on a re-run):

- ``FILE_LOADS`` (default): rows are written to Avro files on GCS and loaded
  by BigQuery load jobs: free ingestion, no streaming buffer (rows can be
  updated or deleted at once), typed Avro values. In a streaming job a load
  job runs per table every ``triggering_frequency_s`` seconds; BigQuery
  allows 1,500 load jobs per table a day, hence the 60 s minimum. Storage is
  the record of what happened, not the alert path (notification sinks get
  alerts at once), so minutes of latency are fine.
- ``STREAMING_INSERTS``: the legacy ``tabledata.insertAll`` API: rows are
  queryable within seconds, billed per GB ingested, deduplicated best effort
  by Beam's per-row insert ids.

``STORAGE_WRITE_API`` is not offered: in the Python SDK it is a cross-language
transform that downloads and runs a Java expansion service when the pipeline
is built, which the Python flex-template launcher image and offline CI
(DataflowRunner ``--dry_run``) do not have.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airis_mon.models import ComponentConfig

__all__ = ["BigQuerySinkConfig"]

#: A project id (maybe domain-scoped, ``example.com:my-project``).
_PROJECT_ID = r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"
_KMS_KEY = r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$"


class BigQuerySinkConfig(ComponentConfig):
    """Where and how the storage sink writes to BigQuery."""

    type: Literal["bigquery"] = "bigquery"
    project: str = Field(pattern=_PROJECT_ID, description="project of the dataset")
    dataset: str = Field(pattern=r"^[A-Za-z0-9_]{1,1024}$", description="dataset id; must exist")
    table_prefix: str = Field(
        default="airis_mon_", pattern=r"^[A-Za-z0-9_]{0,64}$", description="table name = prefix + kind"
    )
    write_method: Literal["FILE_LOADS", "STREAMING_INSERTS"] = "FILE_LOADS"
    triggering_frequency_s: int = Field(
        default=300, ge=60, le=86_400, description="streaming FILE_LOADS: seconds between load jobs per table"
    )
    create_disposition: Literal["CREATE_IF_NEEDED", "CREATE_NEVER"] = "CREATE_IF_NEEDED"
    partition_expiration_days: int | None = Field(
        default=None, ge=1, le=36_500, description="days a day partition is kept (created tables only)"
    )
    kms_key: str | None = Field(default=None, pattern=_KMS_KEY, description="Cloud KMS key of created tables")

    def table_name(self, kind: str) -> str:
        """``PROJECT:DATASET.PREFIXkind``, the table spec of one kind."""
        return f"{self.project}:{self.dataset}.{self.table_prefix}{kind}"
