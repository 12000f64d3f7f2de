"""The ``ldap`` source against a real OpenLDAP ``slapd`` on 127.0.0.1 (see ``slapd_peer.py``):
paged sync, Active Directory and inetOrgPerson mappings, groups, TLS, errors, Beam."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import re

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from pydantic import SecretStr, ValidationError

from airis_mon.errors import PermanentError, TransientError
from airis_mon.payloads import parse_payload
from airis_mon.retry import RetryConfig
from airis_mon.schema import UserRecord
from sources.ldap import LdapConfig, ReadFromLdap, to_user_records
from sources.ldap.client import LdapClient
from sources.ldap.mapping import dn_key, group_name, member_dn
from sources.ldap.poller import LdapPoller
from sources.ldap.sync import sync_directory
from sources.polling import PollSettings
from tests.sources.ldap.slapd_peer import (
    ALICE_GUID,
    LIMITED_DN,
    LIMITED_PASSWORD,
    LIMITED_TOTAL,
    SUFFIX,
    SYNC_DN,
    SYNC_PASSWORD,
    USER_COUNT,
    Slapd,
    free_port,
    write_certificate,
)

FAST = RetryConfig(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002)
NOW = 1_764_374_400_000
WRONG_PASSWORD = "Wr0ng-Secret-5e7d0c"
USER_FILTER = 'filter="(|(objectClass=user)(objectClass=inetOrgPerson))"'

#: Every user of the seeded directory, as the event carries it (sorted by username).
EXPECTED_USERS = [
    {"user_id": ALICE_GUID, "username": "alice", "email": "alice@airis.test", "display_name": "Alice Admin",
     "department": "Platform", "title": "SRE", "groups": ["Data, Science", "ml-admins"]},
    {"user_id": "uuid:bob", "username": "bob", "email": "bob@airis.test", "display_name": "Bob B.",
     "department": "ML", "title": "ML", "groups": ["all-staff", "ml-engineers"]},
    {"user_id": f"cn=Carol Chen,ou=people,{SUFFIX}", "username": "carol", "email": "carol@airis.test",
     "display_name": "Carol Chen", "department": "Data", "title": "", "groups": ["ml-admins"]},
    {"user_id": "uuid:erin", "username": "erin", "email": "erin@airis.test", "display_name": "Erin Eve",
     "department": "ML", "title": "Researcher", "groups": ["ml-engineers"]},
    {"user_id": "uuid:frank", "username": "frank", "email": "frank@airis.test", "display_name": "Frank Fox",
     "department": "Finance", "title": "Analyst", "groups": ["finance"]},
    {"user_id": "uuid:grace", "username": "grace", "email": "grace@airis.test", "display_name": "Grace Gu",
     "department": "Finance", "title": "", "groups": ["all-staff", "finance"]},
    {"user_id": "uuid:heidi", "username": "heidi", "email": "heidi@airis.test", "display_name": "Heidi Hu",
     "department": "Data", "title": "", "groups": []},
    {"user_id": "uuid:ivan", "username": "ivan", "email": "", "display_name": "Ivan Ito",
     "department": "Data", "title": "", "groups": []},
    {"user_id": "uuid:judy", "username": "judy", "email": "judy@airis.test", "display_name": "Judy Jo",
     "department": "ML", "title": "", "groups": ["ml-engineers"]},
    {"user_id": "uuid:mallory", "username": "mallory", "email": "mallory@airis.test", "display_name": "Mallory Ma",
     "department": "Security", "title": "", "groups": []},
    {"user_id": "uuid:Nina No-Uid", "username": "Nina No-Uid", "email": "nina@airis.test",
     "display_name": "Nina No-Uid", "department": "", "title": "", "groups": ["all-staff"]},
    {"user_id": "uuid:oscar", "username": "oscar", "email": "oscar@airis.test", "display_name": "Oscar Ortiz",
     "department": "Security", "title": "", "groups": []},
    {"user_id": f"cn=Victor Vance,ou=people,{SUFFIX}", "username": "victor", "email": "victor@airis.test",
     "display_name": "Victor Vance", "department": "Finance", "title": "Controller", "groups": []},
]  # fmt: skip


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """A real slapd for the whole module (fails, never skips, when OpenLDAP is not installed)."""
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="module")
def entry_uuids(slapd) -> dict[str, str]:
    """username (uid, or cn without uid) -> entryUUID, read with the root account and plain ldap3."""
    import ldap3

    from tests.sources.ldap.slapd_peer import ROOT_DN, ROOT_PASSWORD

    connection = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), ROOT_DN, ROOT_PASSWORD,
                                  auto_bind=True)  # fmt: skip
    connection.search(f"ou=people,{SUFFIX}", "(objectClass=inetOrgPerson)", attributes=["uid", "cn", "entryUUID"])
    uuids = {}
    for entry in connection.response:
        attributes = entry["attributes"]
        uuids[(attributes["uid"] or attributes["cn"])[0]] = attributes["entryUUID"][0]
    connection.unbind()
    return uuids


def expected_users(entry_uuids: dict[str, str]) -> list[dict]:
    """EXPECTED_USERS with the server-generated entryUUIDs filled in."""
    return [
        u | {"user_id": entry_uuids[u["user_id"][5:]]} if u["user_id"].startswith("uuid:") else u
        for u in EXPECTED_USERS
    ]


def config(slapd: Slapd, **overrides) -> LdapConfig:
    values = {"name": "corp-ldap", "url": slapd.url, "bind_dn": SYNC_DN, "bind_password": SecretStr(SYNC_PASSWORD),
              "base_dn": SUFFIX, "page_size": 5, "timeout_s": 5, "poll": PollSettings(retry=FAST)}  # fmt: skip
    return LdapConfig(**(values | overrides))


def searches(log: str, needle: str = USER_FILTER) -> list[str]:
    """The SRCH request lines of ``log`` whose filter is ``needle``."""
    return [line for line in log.splitlines() if " SRCH base=" in line and needle in line]


# --- sync against the real server -------------------------------------------------------------------


def test_a_paged_sync_returns_every_user_mapped_exactly(slapd, entry_uuids):
    offset = slapd.log_size()
    result = sync_directory(config(slapd))

    assert [user.as_payload() for user in result.users] == expected_users(entry_uuids)
    assert len(result.users) == USER_COUNT == 13
    assert result.user_pages == 3  # 13 users, 5 a page: 5 + 5 + 3
    server_log = slapd.log_since(offset)
    assert len(searches(server_log)) == 3  # what the server received: three requests of the user search
    assert re.findall(r"SEARCH RESULT tag=101 err=0 .*nentries=(\d+)", server_log)[:3] == ["5", "5", "3"]
    assert result.group_pages == 1  # inetOrgPerson users without memberOf: one group search


def test_active_directory_users_take_groups_from_memberof_written_by_the_server(slapd):
    users = {u.username: u for u in sync_directory(config(slapd)).users}
    alice = users["alice"]
    assert (alice.kind, alice.has_member_of, alice.user_id) == ("active_directory", True, ALICE_GUID)
    assert alice.groups == ("Data, Science", "ml-admins")  # from cn=Data\2C Science: unescaped
    assert (users["carol"].user_id, users["carol"].groups) == (f"cn=Carol Chen,ou=people,{SUFFIX}", ("ml-admins",))
    assert (users["victor"].kind, users["victor"].groups) == ("active_directory", ())  # AD: no group search for it
    assert {u.kind for name, u in users.items() if name not in ("alice", "carol", "victor")} == {"inet_org_person"}


def test_group_fallback_reads_groupofnames_and_groupofuniquenames(slapd):
    users = {u.username: u.groups for u in sync_directory(config(slapd, page_size=2)).users}
    assert users["bob"] == ("all-staff", "ml-engineers")  # two groupOfNames
    assert users["frank"] == ("finance",)  # groupOfUniqueNames member with the optional #'0101'B UID
    assert users["grace"] == ("all-staff", "finance")  # listed as "UID=Grace, OU=People,DC=airis,DC=test"
    assert users["Nina No-Uid"] == ("all-staff",)
    assert users["heidi"] == ()


def test_directory_modes_force_one_mapping(slapd, entry_uuids):
    inet = {u.username: u for u in sync_directory(config(slapd, directory="inet_org_person")).users}
    # AD entries read as inetOrgPerson: no uid -> the RDN value; cn as display name; groups from memberOf
    assert inet["Alice Admin"].as_payload() == {
        "user_id": inet["Alice Admin"].user_id, "username": "Alice Admin", "email": "alice@airis.test",
        "display_name": "Alice Admin", "department": "", "title": "SRE", "groups": ["Data, Science", "ml-admins"],
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", inet["Alice Admin"].user_id)  # its entryUUID, not objectGUID
    assert inet["bob"].user_id == entry_uuids["bob"]

    # AD mode on an inetOrgPerson entry: no sAMAccountName -> the RDN value, no objectGUID -> the DN,
    # no `department` (departmentNumber is not read), and no group search for it
    ad = sync_directory(config(slapd, directory="active_directory", user_filter="(uid=bob)"))
    assert [u.as_payload() for u in ad.users] == [
        {"user_id": f"uid=bob,ou=people,{SUFFIX}", "username": "bob", "email": "bob@airis.test",
         "display_name": "Bob B.", "department": "", "title": "ML", "groups": []}
    ]  # fmt: skip
    assert ad.group_pages == 0


def test_a_custom_filter_and_group_base(slapd):
    result = sync_directory(
        config(slapd, user_filter="(departmentNumber=ML)", group_base_dn=f"cn=ml-engineers,ou=groups,{SUFFIX}")
    )
    assert [(u.username, u.groups) for u in result.users] == [
        ("bob", ("ml-engineers",)),  # all-staff is outside group_base_dn
        ("erin", ("ml-engineers",)),
        ("judy", ("ml-engineers",)),
    ]
    assert (result.user_pages, result.group_pages) == (1, 1)


# --- the poller's event ----------------------------------------------------------------------------


def test_the_poll_is_one_user_sync_event_of_the_public_contract(slapd, entry_uuids):
    payloads = LdapPoller(config(slapd, environment="prod", source="corp_ad")).poll(NOW)
    assert len(payloads) == 1
    event = payloads[0]
    assert {k: v for k, v in event.items() if k != "data"} == {
        "timestamp": NOW, "event_type": "user_sync", "source": "corp_ad", "severity": "info"
    }  # fmt: skip
    assert event["data"] == {"count": 13, "users": expected_users(entry_uuids), "environment": "prod"}

    points, events, dead = parse_payload(event, "source:corp-ldap")
    assert (points, dead) == ([], [])
    assert [(e.timestamp_ms, e.event_type, e.source, e.severity) for e in events] == [
        (NOW, "user_sync", "corp_ad", "info")
    ]
    assert json.loads(events[0].data) == event["data"]


def test_the_event_matches_the_gateway_user_sync_shape(slapd):
    from sources.gateway.app import UserIn

    event = LdapPoller(config(slapd)).poll(NOW)[0]
    assert event["source"] == "corp-ldap"  # no `source` set: the integration name
    assert set(event["data"]) == {"count", "users"}  # no environment set: exactly the gateway's data keys
    for user in event["data"]["users"]:
        assert UserIn.model_validate(user).model_dump() == user  # the gateway's own user model accepts each


def test_user_records_for_enrichment(slapd, entry_uuids):
    event = LdapPoller(config(slapd, user_filter="(|(uid=frank)(sAMAccountName=alice))")).poll(NOW)[0]
    records = to_user_records(event["data"]["users"], event["source"])
    assert records == [
        UserRecord(ALICE_GUID, "alice", "alice@airis.test", "Alice Admin", "Platform", "SRE",
                   '["Data, Science", "ml-admins"]', "corp-ldap"),
        UserRecord(entry_uuids["frank"], "frank", "frank@airis.test", "Frank Fox", "Finance", "Analyst",
                   '["finance"]', "corp-ldap"),
    ]  # fmt: skip


# --- errors -------------------------------------------------------------------------------------------


def test_a_wrong_password_is_permanent_and_names_the_bind_dn_only(slapd):
    with pytest.raises(PermanentError) as caught:
        sync_directory(config(slapd, bind_password=SecretStr(WRONG_PASSWORD)))
    message = str(caught.value)
    assert f"bind as '{SYNC_DN}' failed: invalidCredentials (LDAP result 49)" in message
    assert "check bind_dn and bind_password" in message
    assert WRONG_PASSWORD not in message and SYNC_PASSWORD not in message


def test_an_unreachable_port_is_transient():
    url = f"ldap://127.0.0.1:{free_port()}"  # nobody listens there
    with pytest.raises(TransientError, match=r"connect failed: LDAPSocketOpenError: .*[Cc]onnection refused"):
        LdapClient(url, SYNC_DN, SecretStr(SYNC_PASSWORD), timeout_s=2).open()


def test_a_server_that_does_not_answer_is_a_transient_timeout(slapd):
    slapd.pause()
    try:
        with pytest.raises(TransientError, match=r"bind as .* failed: LDAPSocketReceiveError: .*timed out"):
            LdapClient(slapd.url, SYNC_DN, SecretStr(SYNC_PASSWORD), timeout_s=1).open()
    finally:
        slapd.resume()


def test_search_errors_follow_the_result_code(slapd):
    with pytest.raises(PermanentError, match=r"search 'ou=nowhere,dc=airis,dc=test' .*noSuchObject \(LDAP result 32\)"):
        sync_directory(config(slapd, base_dn=f"ou=nowhere,{SUFFIX}"))
    # the server's size limit for this account cuts a paged search short: never emit a partial sync
    limited = config(slapd, bind_dn=LIMITED_DN, bind_password=SecretStr(LIMITED_PASSWORD))
    with pytest.raises(PermanentError, match=r"sizeLimitExceeded \(LDAP result 4\).*cut the sync short"):
        sync_directory(limited)
    assert LIMITED_TOTAL < USER_COUNT


# --- TLS ------------------------------------------------------------------------------------------------


def test_starttls_verifies_the_server_with_ca_file(slapd):
    offset = slapd.log_size()
    result = sync_directory(config(slapd, start_tls=True, ca_file=str(slapd.ca_file)))
    assert len(result.users) == USER_COUNT
    server_log = slapd.log_since(offset)
    assert "EXT oid=1.3.6.1.4.1.1466.20037" in server_log  # the StartTLS extended operation
    assert re.search(rf'BIND dn="{SYNC_DN}" mech=SIMPLE bind_ssf=0 ssf=(\d+)', server_log).group(1) != "0"


def test_ldaps_verifies_the_server_with_ca_file(slapd):
    offset = slapd.log_size()
    result = sync_directory(config(slapd, url=slapd.ldaps_url, ca_file=str(slapd.ca_file)))
    assert [u.username for u in result.users][:2] == ["alice", "bob"]
    assert "TLS established" in slapd.log_since(offset)


def test_an_untrusted_certificate_or_missing_ca_file_is_permanent(slapd, tmp_path):
    other_ca, _ = write_certificate(tmp_path, "other")  # a CA that did not sign the server's certificate
    with pytest.raises(PermanentError, match=r"StartTLS failed: .*certificate verify failed.*check ca_file"):
        sync_directory(config(slapd, start_tls=True, ca_file=str(other_ca)))
    with pytest.raises(PermanentError, match=r"connect failed: .*certificate verify failed.*check ca_file"):
        sync_directory(config(slapd, url=slapd.ldaps_url, ca_file=str(other_ca)))
    with pytest.raises(PermanentError, match=r"TLS setup \(ca_file .*missing.pem\) failed"):
        sync_directory(config(slapd, start_tls=True, ca_file=str(tmp_path / "missing.pem")))


# --- config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"url": "http://127.0.0.1:389"}, "must start with ldap:// or ldaps://"),
        ({"url": "ldap://"}, "needs a host"),
        ({"url": "ldap://127.0.0.1:99999"}, "invalid port"),
        ({"url": "ldap://127.0.0.1/dc=airis,dc=test?uid"}, "put the DN in base_dn"),
        ({"url": "ldaps://127.0.0.1", "start_tls": True}, "an ldaps:// URL is already TLS"),
        ({"ca_file": "/etc/ssl/ca.pem"}, "ca_file is set but the connection is not TLS"),
        ({"user_filter": "(uid=bob"}, "not a valid LDAP filter"),
        ({"group_filter": "objectClass=groupOfNames"}, "not a valid LDAP filter"),
        ({"bind_password": SecretStr("")}, "must not be empty"),
        ({"bind_password": "literal-password"}, "not a literal value"),
        ({"directory": "openldap"}, "'auto', 'active_directory' or 'inet_org_person'"),
        ({"page_size": 0}, "greater than or equal to 1"),
        ({"pagesize": 5}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_a_clear_error(overrides, problem):
    values = {"name": "d", "url": "ldap://127.0.0.1", "bind_dn": SYNC_DN, "bind_password": SecretStr("x" * 8),
              "base_dn": SUFFIX} | overrides  # fmt: skip
    with pytest.raises(ValidationError, match=re.escape(problem)) as caught:
        LdapConfig(**values)
    assert "literal-password" not in str(caught.value)


def test_config_from_yaml_values_resolves_secret_and_ca_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRIS_TEST_LDAP_PASSWORD", SYNC_PASSWORD)
    cfg = LdapConfig.model_validate(
        {"name": "corp", "type": "ldap", "url": "ldaps://dc1.example.com", "bind_dn": SYNC_DN,
         "bind_password": {"env": "AIRIS_TEST_LDAP_PASSWORD"}, "base_dn": SUFFIX, "ca_file": "certs/ca.pem"},
        context={"base_dir": str(tmp_path)},
    )  # fmt: skip
    assert cfg.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert cfg.bind_password.get_secret_value() == SYNC_PASSWORD
    assert (cfg.page_size, cfg.directory, cfg.timeout_s, cfg.event_source) == (500, "auto", 30, "corp")
    assert cfg.user_filter == "(|(objectClass=user)(objectClass=inetOrgPerson))"
    assert SYNC_PASSWORD not in repr(cfg) and SYNC_PASSWORD not in str(cfg.model_dump())
    restored = pickle.loads(pickle.dumps(functools.partial(LdapPoller, cfg)))()  # what Beam ships to workers
    assert isinstance(restored, LdapPoller)


def test_dn_helpers():
    assert dn_key("UID=Grace, OU=People,DC=airis,DC=test") == dn_key("uid=grace,ou=people,dc=airis,dc=test")
    assert dn_key("cn=Data\\2C Science,dc=x") == dn_key("CN=Data\\, Science,DC=X")
    assert dn_key("cn=a,dc=x") != dn_key("cn=b,dc=x")
    assert group_name("CN=Caf\\C3\\A9 Team,OU=Groups,DC=x") == "Café Team"
    assert group_name("ou=Admins+cn=admins-group,dc=x") == "admins-group"  # cn in a multi-valued first RDN
    assert group_name("ou=Admins,cn=other,dc=x") == "Admins"  # no cn in the first RDN: its value
    assert member_dn("uid=frank,ou=people,dc=x#'0101'B") == "uid=frank,ou=people,dc=x"


# --- through Beam --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_wrong_password_is_an_unhealthy_record_and_never_leaks(slapd, caplog, capfd):
    cfg = config(slapd, bind_password=SecretStr(WRONG_PASSWORD))

    with caplog.at_level(logging.DEBUG), TestPipeline() as pipeline:
        out = pipeline | ReadFromLdap(cfg)
        health = out["health"] | "H" >> beam.Map(lambda h: (h.integration, h.ok, h.records, h.message))
        dead = out["dead_letters"] | "D" >> beam.Map(lambda d: (d.reason, d.original))
        expected = (
            f"poll failed after 1 attempt(s): permanent failure: ldap {slapd.url}: bind as '{SYNC_DN}' "
            "failed: invalidCredentials (LDAP result 49); check bind_dn and bind_password"
        )
        assert_that(health, equal_to([("corp-ldap", False, 0, expected)]), label="health")
        assert_that(dead, equal_to([]), label="no dead letters")
        assert_that(out["events"], equal_to([]), label="no events")
    captured = capfd.readouterr()
    for text in (caplog.text, captured.out, captured.err, expected):
        assert WRONG_PASSWORD not in text
        assert SYNC_PASSWORD not in text


@pytest.mark.slow
def test_end_to_end_a_bounded_run_yields_the_user_sync_event(slapd):
    cfg = config(slapd, environment="test")
    with beam.Pipeline() as pipeline:
        out = pipeline | "Read" >> ReadFromLdap(cfg)
        events = out["events"] | "E" >> beam.Map(
            lambda e: (e.event_type, e.source, e.severity, json.loads(e.data)["count"],
                       [u["username"] for u in json.loads(e.data)["users"]][:3])
        )  # fmt: skip
        assert_that(events, equal_to([("user_sync", "corp-ldap", "info", 13, ["alice", "bob", "carol"])]), label="ev")
        assert_that(out["health"] | "H" >> beam.Map(lambda h: (h.integration, h.ok, h.records)),
                    equal_to([("corp-ldap", True, 1)]), label="health")  # fmt: skip
        assert_that(out["dead_letters"], equal_to([]), label="no dead letters")
        assert_that(out["points"], equal_to([]), label="no points")
