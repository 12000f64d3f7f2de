"""LDAP / Active Directory users (``ldap3``): one ``user_sync`` event per poll, the same
event the HTTP gateway emits for ``POST /api/v1/integrations/user-sync``."""

from sources.ldap.config import LdapConfig
from sources.ldap.mapping import to_user_records
from sources.ldap.transform import ReadFromLdap

__all__ = ["LdapConfig", "ReadFromLdap", "to_user_records"]
