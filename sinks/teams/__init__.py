"""Alerts as Adaptive Card messages to a Microsoft Teams webhook."""

from sinks.teams.config import TeamsConfig
from sinks.teams.encoder import TeamsEncoder, encode_message
from sinks.teams.transform import WriteToTeams

__all__ = ["TeamsConfig", "TeamsEncoder", "WriteToTeams", "encode_message"]
