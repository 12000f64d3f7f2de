"""The Dataflow flex template: ``launch.py`` (the launcher's entry), ``make_metadata.py`` (writes ``metadata.json``)."""
