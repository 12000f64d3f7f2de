"""A real OpenLDAP ``slapd`` on 127.0.0.1 for the ``ldap`` source's tests.

It serves ``ldap://`` (StartTLS available) and ``ldaps://`` with a throwaway
self-signed certificate, an Active-Directory-like schema (``sAMAccountName``,
``department``, ``objectGUID`` on an AUXILIARY ``user`` class, with AD's OIDs;
``memberOf`` comes from the ``memberof`` overlay), and the directory of
:data:`SEED`: 3 AD-style users, 10 inetOrgPerson users, static groups.

``slapadd`` bypasses overlays, so the seeded users have no ``memberOf``; the
AD groups of :data:`AD_GROUPS` are added over LDAP after the start, which
makes the overlay write ``memberOf`` on their (AD-style) members, as AD does.

``slapd -d stats`` keeps it in the foreground (its PID is ours to stop) and
logs every operation to ``log_path``: tests read it to see what the server
received (search pages, StartTLS).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPSEARCH = "/usr/bin/ldapsearch"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")

SUFFIX = "dc=airis,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "Root-Pa55-7c1e"  # a throwaway test directory
SYNC_DN = f"cn=svc-sync,ou=services,{SUFFIX}"
SYNC_PASSWORD = "Sync-Pa55-3f9b2d"
LIMITED_DN = f"cn=svc-limited,ou=services,{SUFFIX}"
LIMITED_PASSWORD = "Limited-Pa55-81aa"
#: Entries a paged search of svc-limited may return in total (slapd ``size.prtotal``).
LIMITED_TOTAL = 7
ALICE_GUID = "00112233-4455-6677-8899-aabbccddeeff"

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID' EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
  MAY ( sAMAccountName $ department $ objectGUID $ mail $ displayName ) )
"""


def _ad_user(cn: str, sam: str, mail: str, department: str, title: str, guid_b64: str | None) -> str:
    lines = [f"dn: cn={cn},ou=people,{SUFFIX}", "objectClass: top", "objectClass: person",
             "objectClass: organizationalPerson", "objectClass: user", f"cn: {cn}", f"sn: {cn.split()[-1]}",
             f"sAMAccountName: {sam}", f"mail: {mail}", f"displayName: {cn}", f"department: {department}"]  # fmt: skip
    if title:
        lines.append(f"title: {title}")
    if guid_b64:
        lines.append(f"objectGUID:: {guid_b64}")
    return "\n".join(lines)


def _person(uid: str | None, cn: str, *extra: str, rdn: str | None = None) -> str:
    rdn = rdn or f"uid={uid}"
    lines = [f"dn: {rdn},ou=people,{SUFFIX}", "objectClass: inetOrgPerson", f"cn: {cn}", f"sn: {cn.split()[-1]}"]
    if uid:
        lines.append(f"uid: {uid}")
    return "\n".join([*lines, *extra])


def _guid_b64(guid: str) -> str:
    import base64
    import uuid

    return base64.b64encode(uuid.UUID(guid).bytes_le).decode()


SEED = "\n\n".join(
    [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: AIRIS test\ndc: airis",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SYNC_DN}\nobjectClass: person\ncn: svc-sync\nsn: sync\nuserPassword: {SYNC_PASSWORD}",
        f"dn: {LIMITED_DN}\nobjectClass: person\ncn: svc-limited\nsn: limited\nuserPassword: {LIMITED_PASSWORD}",
        # Active Directory style (objectClass user): sAMAccountName, department, objectGUID
        _ad_user("Alice Admin", "alice", "alice@airis.test", "Platform", "SRE", _guid_b64(ALICE_GUID)),
        _ad_user("Carol Chen", "carol", "carol@airis.test", "Data", "", None),  # no title, no objectGUID
        _ad_user("Victor Vance", "victor", "victor@airis.test", "Finance", "Controller", None),  # in no group
        # inetOrgPerson
        _person("bob", "Bob Brown", "mail: bob@airis.test", "displayName: Bob B.", "departmentNumber: ML", "title: ML"),
        _person(
            "erin", "Erin Eve", "mail: erin@airis.test", "departmentNumber: ML", "title: Researcher"
        ),  # no dispName
        _person("frank", "Frank Fox", "mail: frank@airis.test", "ou: Finance", "title: Analyst"),  # ou, no dept number
        _person("grace", "Grace Gu", "mail: grace@airis.test", "departmentNumber: Finance"),
        _person("heidi", "Heidi Hu", "mail: heidi@airis.test", "departmentNumber: Data"),
        _person("ivan", "Ivan Ito", "departmentNumber: Data"),  # no mail
        _person("judy", "Judy Jo", "mail: judy@airis.test", "departmentNumber: ML"),
        _person("mallory", "Mallory Ma", "mail: mallory@airis.test", "departmentNumber: Security"),
        _person("oscar", "Oscar Ortiz", "mail: oscar@airis.test", "departmentNumber: Security"),
        _person(None, "Nina No-Uid", "mail: nina@airis.test", rdn="cn=Nina No-Uid"),  # username from the RDN
        # static groups (no memberOf on their members: the fallback reads them)
        f"dn: cn=ml-engineers,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: ml-engineers\n"
        f"member: uid=bob,ou=people,{SUFFIX}\nmember: uid=erin,ou=people,{SUFFIX}\nmember: uid=judy,ou=people,{SUFFIX}",
        f"dn: cn=finance,ou=groups,{SUFFIX}\nobjectClass: groupOfUniqueNames\ncn: finance\n"
        f"uniqueMember: uid=frank,ou=people,{SUFFIX}#'0101'B\nuniqueMember: UID=Grace, OU=People,DC=airis,DC=test",
        f"dn: cn=all-staff,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: all-staff\n"
        f"member: uid=bob,ou=people,{SUFFIX}\nmember: uid=grace,ou=people,{SUFFIX}\n"
        f"member: cn=Nina No-Uid,ou=people,{SUFFIX}",
    ]
)

#: Added over LDAP once slapd runs, so that the memberof overlay writes memberOf on the members.
AD_GROUPS = {
    f"cn=ml-admins,ou=groups,{SUFFIX}": [f"cn=Alice Admin,ou=people,{SUFFIX}", f"cn=Carol Chen,ou=people,{SUFFIX}"],
    f"cn=Data\\, Science,ou=groups,{SUFFIX}": [f"cn=Alice Admin,ou=people,{SUFFIX}"],
}
USER_COUNT = 13


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_certificate(folder: Path, prefix: str) -> tuple[Path, Path]:
    """A self-signed certificate (also its own CA) for 127.0.0.1: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"airis-mon-{prefix}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / f"{prefix}-cert.pem", folder / f"{prefix}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Slapd:
    """slapd in ``folder``: ``with Slapd(folder) as server: server.url, server.ldaps_url ...``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.log_path = folder / "slapd.log"
        self.ca_file, self._key_file = write_certificate(folder, "server")
        self.process: subprocess.Popen | None = None

    def _config(self) -> Path:
        schema = self.folder / "ad-style.schema"
        schema.write_text(AD_SCHEMA)
        (self.folder / "db").mkdir()
        includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
        config = self.folder / "slapd.conf"
        config.write_text(
            f"""{includes}
include {schema}
pidfile {self.folder}/slapd.pid
argsfile {self.folder}/slapd.args
TLSCertificateFile {self.ca_file}
TLSCertificateKeyFile {self._key_file}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
database mdb
maxsize 33554432
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {self.folder}/db
limits dn.exact="{LIMITED_DN}" size.prtotal={LIMITED_TOTAL}
overlay memberof
access to * by * read
"""
        )
        return config

    def __enter__(self) -> Slapd:
        missing = [tool for tool in (SLAPD, SLAPADD, LDAPSEARCH) if not os.access(tool, os.X_OK)]
        if missing or not Path("/etc/ldap/schema/inetorgperson.schema").exists():
            raise RuntimeError(
                f"OpenLDAP is not installed ({', '.join(missing) or '/etc/ldap/schema'} missing): run "
                "`apt-get install -y --no-install-recommends slapd ldap-utils` (as .ci/run does)"
            )
        config = self._config()
        seed = self.folder / "seed.ldif"
        seed.write_text(SEED + "\n")
        subprocess.run([SLAPADD, "-q", "-f", str(config), "-l", str(seed)], check=True, capture_output=True,
                       timeout=30)  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-h", f"{self.url}/ {self.ldaps_url}/", "-f", str(config), "-d", "stats"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            self._wait_ready()
            self._add_ad_groups()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, limit_s: float = 15.0) -> None:
        deadline = time.monotonic() + limit_s
        command = [LDAPSEARCH, "-x", "-H", self.url, "-b", "", "-s", "base", "namingContexts"]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{self.log_path.read_text()[-2000:]}")
            answer = subprocess.run(command, capture_output=True, text=True, timeout=5)
            if answer.returncode == 0 and SUFFIX in answer.stdout:
                return
            time.sleep(0.05)
        raise RuntimeError(f"slapd did not answer within {limit_s} s:\n{self.log_path.read_text()[-2000:]}")

    def _add_ad_groups(self) -> None:
        import ldap3

        connection = ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), ROOT_DN, ROOT_PASSWORD,
                                      auto_bind=True, raise_exceptions=True)  # fmt: skip
        try:
            for dn, members in AD_GROUPS.items():
                connection.add(dn, ["groupOfNames"], {"member": members})
        finally:
            connection.unbind()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test left it stopped
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder / "db", ignore_errors=True)

    # --- what the server saw ----------------------------------------------------------------------

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int, until: str = " UNBIND", limit_s: float = 5.0) -> str:
        """The operations log from ``offset``, once it contains ``until`` (slapd logs from its own
        threads; by default: once the client's unbind, the end of its session, is logged)."""
        deadline = time.monotonic() + limit_s
        while True:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
            if until in text or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): it accepts TCP connections (kernel backlog) but never answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
