"""Maps config ``type:`` names to components.

A component is a config model plus a PTransform, named by import path so that
the core never imports sources, transforms or sinks at import time. Adding an
integration means one folder and one line in :data:`COMPONENTS`; the test
suite fails when a registered component has no test folder
``tests/<kind>s/<type>/``.

>>> get_component("source", "payload_files").transform_path
'sources.payload_files.transform:ReadFromPayloadFiles'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from airis_mon.errors import ConfigError

__all__ = ["COMPONENTS", "Component", "get_component", "known_types", "load_object"]

Kind = Literal["source", "transform", "sink"]


@dataclass(frozen=True)
class Component:
    """One registered component: where its config model and transform live."""

    kind: Kind
    type_name: str
    config_path: str  # "module:ConfigClass"
    transform_path: str  # "module:PTransformClass"
    description: str
    role: str = ""  # sinks: "storage" (every output) or "notify" (routed alerts)
    encoder_path: str = ""  # HTTP notification sinks: "module:EncoderClass" (config -> encoder)
    notifier_path: str = ""  # other notification sinks: "module:factory" (config -> Notifier)
    extra: str = ""  # the pip extra its client library comes from (airis_mon.extras); "" for the core

    def config_model(self) -> type:
        return load_object(self.config_path)

    def transform_class(self) -> type:
        return load_object(self.transform_path)


COMPONENTS: tuple[Component, ...] = (
    Component(
        "source",
        "payload_files",
        "sources.payload_files.config:PayloadFilesConfig",
        "sources.payload_files.transform:ReadFromPayloadFiles",
        "JSON-lines files of ingestion payloads (bundled sample, recordings)",
    ),
    Component(
        "source",
        "point_files",
        "sources.point_files.config:PointFilesConfig",
        "sources.point_files.transform:ReadFromPointFiles",
        "Parquet files of raw metric points (backfill chunks, exports)",
    ),
    Component(
        "source",
        "gateway",
        "sources.gateway.config:GatewayConfig",
        "sources.gateway.transform:ReadFromGatewaySpool",
        "The HTTP ingestion API's spool: closed segments, each read once",
    ),
    Component(
        "source",
        "kubeflow",
        "sources.kubeflow.config:KubeflowConfig",
        "sources.kubeflow.transform:ReadFromKubeflow",
        "Kubeflow Pipelines runs: run and step durations, success rates, run state changes",
        extra="kubeflow",
    ),
    Component(
        "source",
        "github",
        "sources.github.config:GithubConfig",
        "sources.github.transform:ReadFromGithub",
        "GitHub Actions workflow runs and jobs (PyGithub): workflow_run / workflow_job events, workflow_duration, "
        "job_duration and job_queue_duration (s) per completed run and job",
        extra="github",
    ),
    Component(
        "source",
        "ldap",
        "sources.ldap.config:LdapConfig",
        "sources.ldap.transform:ReadFromLdap",
        "LDAP / Active Directory users (paged search, LDAPS/StartTLS): one user_sync event per poll",
        extra="ldap",
    ),
    Component(
        "source",
        "mlflow",
        "sources.mlflow.config:MlflowConfig",
        "sources.mlflow.transform:ReadFromMlflow",
        "MLflow model registry: model_version_status events for new versions, stage/alias/tag/status changes",
        extra="mlflow",
    ),
    Component(
        "source",
        "prometheus",
        "sources.prometheus.config:PrometheusConfig",
        "sources.prometheus.transform:ReadFromPrometheus",
        "Prometheus exposition of model servers (TorchServe, Triton/KServe, vLLM): rates and histogram quantiles",
        extra="prometheus",
    ),
    Component(
        "source",
        "tfserving",
        "sources.tfserving.config:TFServingConfig",
        "sources.tfserving.transform:ReadFromTFServing",
        "TensorFlow Serving over gRPC: version states, a timed Predict probe, its Prometheus metrics",
        extra="tfserving",
    ),
    Component(
        "source",
        "cloudwatch",
        "sources.cloudwatch.config:CloudWatchConfig",
        "sources.cloudwatch.transform:ReadFromCloudWatch",
        "AWS CloudWatch (AWS/SageMaker): endpoint invocations, 4XX/5XX errors, model/overhead latency per statistic",
        extra="aws",
    ),
    Component(
        "source",
        "vertex",
        "sources.vertex.config:VertexConfig",
        "sources.vertex.transform:ReadFromVertex",
        "GCP Vertex AI endpoints via Cloud Monitoring: prediction/error counts, latency p50/p95/p99, replicas",
        extra="gcp",
    ),
    Component(
        "transform",
        "threshold",
        "transforms.rules.config:ThresholdRule",
        "transforms.rules.batch:EvaluateRules",
        "A window statistic crosses a threshold (for, hysteresis, keep_firing_for, repeat)",
    ),
    Component(
        "transform",
        "no_data",
        "transforms.rules.config:NoDataRule",
        "transforms.rules.batch:EvaluateRules",
        "A group that reported stops reporting",
    ),
    Component(
        "transform",
        "prometheus",
        "transforms.rules.config:PrometheusRule",
        "transforms.rules.batch:EvaluateRules",
        "An imported Prometheus alerting rule (PromQL subset), with Prometheus for/keep_firing_for semantics",
    ),
    Component(
        "transform",
        "drift",
        "transforms.rules.ml_config:DriftRule",
        "transforms.rules.batch:EvaluateRules",
        "A metric's distribution drifts from a reference (rolling, fixed, previous model version): PSI, KS, JS",
    ),
    Component(
        "transform",
        "anomaly",
        "transforms.rules.ml_config:AnomalyRule",
        "transforms.rules.batch:EvaluateRules",
        "A window statistic is anomalous for Beam's detectors (zscore, robust_zscore, iqr), optionally seasonal",
    ),
    Component(
        "transform",
        "slo",
        "transforms.rules.ml_config:SloRule",
        "transforms.rules.batch:EvaluateRules",
        "Multiwindow, multi-burn-rate SLO alerts from a good/bad and a total metric; stores the error budget left",
    ),
    Component(
        "transform",
        "version_comparison",
        "transforms.rules.ml_config:VersionComparisonRule",
        "transforms.rules.batch:EvaluateRules",
        "After a model version change, the new version against the previous one over matched periods",
    ),
    Component(
        "sink",
        "parquet",
        "sinks.parquet.config:ParquetSinkConfig",
        "sinks.parquet.transform:WriteToStorage",
        "Parquet files partitioned by record kind and date, written atomically",
        role="storage",
    ),
    Component(
        "sink",
        "bigquery",
        "sinks.bigquery.config:BigQuerySinkConfig",
        "sinks.bigquery.transform:WriteToBigQueryStorage",
        "BigQuery tables per record kind (metrics, aggregates, events, alerts, dead letters), day-partitioned",
        role="storage",
        extra="gcp",
    ),
    Component(
        "sink",
        "notification_log",
        "sinks.notification_log.config:NotificationLogConfig",
        "sinks.notification_log.transform:WriteToNotificationLog",
        "Routed alert notifications as JSON lines in a local file",
        role="notify",
        notifier_path="sinks.notification_log.notifier:NotificationLogNotifier",
    ),
    Component(
        "sink",
        "slack",
        "sinks.slack.config:SlackConfig",
        "sinks.slack.transform:WriteToSlack",
        "Block Kit messages to a Slack incoming webhook",
        role="notify",
        encoder_path="sinks.slack.encoder:SlackEncoder",
    ),
    Component(
        "sink",
        "teams",
        "sinks.teams.config:TeamsConfig",
        "sinks.teams.transform:WriteToTeams",
        "Adaptive Card messages to a Microsoft Teams (Workflows) webhook",
        role="notify",
        encoder_path="sinks.teams.encoder:TeamsEncoder",
    ),
    Component(
        "sink",
        "pagerduty",
        "sinks.pagerduty.config:PagerDutyConfig",
        "sinks.pagerduty.transform:WriteToPagerDuty",
        "PagerDuty Events API v2: trigger/repeat/resolve sharing one dedup_key per episode",
        role="notify",
        encoder_path="sinks.pagerduty.encoder:PagerDutyEncoder",
    ),
    Component(
        "sink",
        "siem",
        "sinks.siem.config:SiemConfig",
        "sinks.siem.transform:WriteToSiem",
        "Enriched security events: HMAC-signed HTTP or Splunk HEC batches",
        role="notify",
        encoder_path="sinks.siem.encoder:SiemEncoder",
    ),
    Component(
        "sink",
        "webhooks",
        "sinks.webhooks.config:WebhooksConfig",
        "sinks.webhooks.transform:WriteToWebhooks",
        "Outbound webhooks signed the Standard Webhooks way, per-endpoint event subscriptions",
        role="notify",
        encoder_path="sinks.webhooks.encoder:WebhooksEncoder",
    ),
    Component(
        "sink",
        "email",
        "sinks.email.config:EmailConfig",
        "sinks.email.transform:WriteToEmail",
        "Email over SMTP (STARTTLS or SMTPS), one message per notification, threaded per episode",
        role="notify",
        notifier_path="sinks.email.notifier:EmailNotifier",
    ),
)


def load_object(path: str) -> type:
    """Import ``"package.module:Name"`` and return ``Name``."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def known_types(kind: Kind) -> list[str]:
    return sorted(c.type_name for c in COMPONENTS if c.kind == kind)


def get_component(kind: Kind, type_name: str) -> Component:
    """The component registered as ``type_name``; ``ConfigError`` if none is."""
    for component in COMPONENTS:
        if component.kind == kind and component.type_name == type_name:
            return component
    raise ConfigError(f"unknown {kind} type {type_name!r} (known: {', '.join(known_types(kind))})")
