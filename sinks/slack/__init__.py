"""Alerts as Block Kit messages to a Slack incoming webhook."""

from sinks.slack.config import SlackConfig
from sinks.slack.encoder import SlackEncoder, build_message
from sinks.slack.transform import WriteToSlack

__all__ = ["SlackConfig", "SlackEncoder", "WriteToSlack", "build_message"]
