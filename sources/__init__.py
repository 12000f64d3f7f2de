"""Sources: one folder per integration, each a ``ReadFromX(config)`` PTransform
whose output is the dict described in :mod:`airis_mon.streams`."""
