"""AIRIS-MON shared core: schema, config, registry, errors and time helpers.

Imports flow one way: ``airis_mon`` (this package) <- ``sources``,
``transforms``, ``sinks`` <- ``pipelines`` <- ``templates``. Nothing here
imports Beam I/O code or talks to a network.
"""

__version__ = "0.1.0"
