"""The ``enrichment`` config section: who owns which model, and how far back a change counts.

::

    enrichment:
      lookback: 6h                 # a model change or CI run this recent is an alert's "what changed"
      ownership:
        - model: churn-model-prod          # the id alerts carry (model_id / model_name / endpoint_name tag)
          aliases: [churn-model]           # other ids of the same model (serving name, endpoint name, ...)
          registry_model: churn-model      # MLflow registered model name (default: model)
          repository: acme/churn-model     # GitHub repository whose workflow runs and pushes deploy it
          team: growth-ml
          owner: jdoe                      # directory username (LDAP sAMAccountName / uid) or e-mail
          slack: growth-slack              # the team's Slack sink (its webhook posts to the team channel)
          slack_channel: "#growth-ml"      # shown in alerts
          pagerduty: growth-pagerduty      # the team's PagerDuty sink (its routing key is the team service)
          page_severities: [critical, high]

Secrets stay in the sinks: an ownership entry names the team's Slack and
PagerDuty *sinks*, whose webhook URL and routing key are configured there.
An alert for an owned model goes to those sinks (PagerDuty only for
``page_severities``); an alert for a model nobody owns follows the routes
and the default route (:mod:`airis_mon.routing`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from airis_mon.durations import Duration
from airis_mon.models import StrictModel
from airis_mon.schema import ALERT_SEVERITIES

__all__ = ["EnrichmentConfig", "Ownership"]


class Ownership(StrictModel):
    """One model's owners and where its alerts go."""

    model: str = Field(min_length=1, description="the model id alerts and metrics carry")
    aliases: list[str] = Field(default_factory=list, description="other ids of the same model")
    registry_model: str | None = Field(default=None, description="MLflow registered model name; default: model")
    repository: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$", description="GitHub owner/name")
    team: str = ""
    owner: str = Field(default="", description="directory username or e-mail of the owner")
    slack: str | None = Field(default=None, description="notification sink of the team's Slack channel")
    slack_channel: str = Field(default="", description="the channel's name, shown in alerts")
    pagerduty: str | None = Field(default=None, description="notification sink of the team's PagerDuty service")
    page_severities: list[Literal[ALERT_SEVERITIES]] = Field(default_factory=lambda: ["critical", "high"])

    def ids(self) -> list[str]:
        return [self.model, *self.aliases]

    def registry_name(self) -> str:
        return self.registry_model or self.model

    def owner_sinks(self, severity: str) -> list[str]:
        """The team's sinks an alert of ``severity`` goes to."""
        sinks = [self.slack] if self.slack else []
        if self.pagerduty and severity in self.page_severities:
            sinks.append(self.pagerduty)
        return sinks


class EnrichmentConfig(StrictModel):
    """Ownership map and change-context settings; see the module docstring."""

    lookback_s: Duration = Field(default=6 * 3600, alias="lookback", description="change context lookback, s")
    ownership: list[Ownership] = Field(default_factory=list)

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    @model_validator(mode="after")
    def _one_owner_per_id(self) -> EnrichmentConfig:
        seen: dict[str, str] = {}
        for entry in self.ownership:
            for model_id in entry.ids():
                if model_id in seen:
                    raise ValueError(f"model id {model_id!r} is owned twice ({seen[model_id]!r}, {entry.model!r})")
                seen[model_id] = entry.model
        return self

    def owner_of_registry_model(self, name: str) -> Ownership | None:
        """The ownership entry whose MLflow registered model is ``name``, or None."""
        return next((entry for entry in self.ownership if entry.registry_name() == name), None)

    def owner_of_repository(self, repository: str) -> Ownership | None:
        """The first ownership entry deployed from GitHub ``repository`` (owner/name), or None."""
        return next((entry for entry in self.ownership if entry.repository == repository), None)

    def owner_of(self, model_id: str) -> Ownership | None:
        """The ownership entry of a model id (its ``model`` or one of its ``aliases``), or None."""
        for entry in self.ownership:
            if model_id in entry.ids():
                return entry
        return None
