"""LDAP / Active Directory users (``ldap3``): one ``user_sync`` event per poll, the same
event the HTTP gateway emits for ``POST /api/v1/integrations/user-sync``."""

from airis_mon.lazy import lazy_exports

# Loaded on first use: importing the config does not import the client library (the extra).
__getattr__, __all__ = lazy_exports(
    __name__, {"LdapConfig": "config", "ReadFromLdap": "transform", "to_user_records": "mapping"}
)
