"""The web console: alert, alert-detail, integration-health and silence pages, a GraphQL API, and the Slack
Acknowledge button (``python -m pipelines.console``; started by ``python -m pipelines.serve``).

- :mod:`console.index`: a DuckDB index of the stored Parquet (and the JSONL histories), refreshed incrementally
- :mod:`console.queries`: what the pages and the API ask, as :mod:`console.records`
- :mod:`console.acknowledgements`: who acknowledged which episode; PagerDuty acknowledge through the outbox
- :mod:`console.slack_interactivity`: Slack's signed interactivity requests (the Acknowledge button)
- :mod:`console.graphql_api`: the GraphQL schema (strawberry), published as ``console/schema.graphql``
- :mod:`console.chart`: the alert page's chart, server-side SVG
- :mod:`console.sessions`: sign-in, cookies, CSRF
- :mod:`console.app`: the FastAPI app that serves it all
"""
