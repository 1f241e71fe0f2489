"""Operator scopes and which command needs which: the station's authorisation table.

Deny by default: in operator mode a command not in ``COMMAND_SCOPES``, ``SESSION_FREE`` or
``ANY_SCOPE`` is refused, so a new command is unusable until someone decides its scope (a
test walks the CLI and fails on any command in no table); ``RIG_COMMANDS`` are refused
in operator mode whatever the session.
"""

from __future__ import annotations

SCOPES = ("issue", "revoke", "verify", "read-identity", "read-code", "change-code",
          "audit-read", "operator-admin", "move", "change-info", "pin-reset", "renew",
          "crl-publish", "provide")

COMMAND_SCOPES: dict[str, str] = {
    "issue resident": "issue",
    "issue batch": "issue",
    "issue unfinished": "issue",
    "issue recover": "issue",
    "card reissue": "issue",
    "card wipe": "issue",
    "card suspend": "revoke",
    "card resume": "revoke",
    "card revoke": "revoke",
    "verify": "verify",
    "trust list": "verify",  # the anchors in force: public keys only
    "readers": "verify",  # probes the cards (SELECT, the issuer domain's serial)
    "card list": "verify",
    "card show": "verify",
    "card certs": "verify",
    "card pin status": "verify",
    "card pin change": "verify",
    "card sign": "verify",
    "card read": "read-identity",
    "card face": "read-identity",
    "card dump": "read-identity",  # with --with: the identity files it opens (a provision)
    "card check": "verify",  # verdicts only: SWs, tries left, anchors, signature checks
    "card info": "read-identity",
    "card code": "read-code",
    "resident change-code": "change-code",
    # counter work on issued cards (issue 13): each operation its own scope
    "resident move-out": "move",
    "resident move-in": "move",
    "resident continue-card": "move",
    "resident moves": "move",
    "resident change": "change-info",
    "card pin reset": "pin-reset",
    "card renew": "renew",
    "crl publish": "crl-publish",
    "audit events": "audit-read",
    # bulk provision of 本人確認情報 to an agency (issue 14): its own scope, not
    # read-identity (a card at the counter): one command releases a whole population
    "provide batch": "provide",
    "operator enroll": "operator-admin",
    "operator list": "operator-admin",
    "operator show": "operator-admin",
    "operator suspend": "operator-admin",
    "operator resume": "operator-admin",
    "operator revoke": "operator-admin",
    "operator unblock": "operator-admin",
    "operator unlock": "operator-admin",
    "operator denials": "operator-admin",
    "hsm init": "operator-admin",
    "hsm status": "operator-admin",
    "db upgrade": "operator-admin",
    "station mode": "operator-admin",
    "audit recipients": "audit-read",
    "audit verify": "audit-read",
    "audit proof": "audit-read",
    "audit consistency": "audit-read",
    "audit disclose": "audit-read",
    "audit self": "audit-read",
    "audit checkpoint": "operator-admin",
}

# `issue recover --operation ID` finishes or rolls back a journalled counter operation:
# that is doing (or undoing) the operation, so it needs the operation's own scope too.
OPERATION_SCOPES: dict[str, str] = {
    "move-in": "move",
    "continue-card": "move",
    "change": "change-info",
    "pin-reset": "pin-reset",
    "renew": "renew",
}

# The registry operator's commands (issue 14): they act on the registry operator's own
# token (`--ca-home`, its PIN file readable by that account only) and on the registry's
# administrative connection (`--admin-db`, that OS account by peer authentication), never
# on this station's token, registry or operator session; that OS account is their
# authority. So they are session-free, and run only locally: the client never sends them
# to the station service, and the service refuses them (tools.service.protocol).
REGISTRY_OPERATOR_COMMANDS = frozenset({
    "registry init-ca", "registry issue-station", "registry revoke-station", "registry crl",
    "registry recipients",
})

# Commands that authenticate by themselves (login, the PAM hook, the registry operator's)
# or show the caller's own session.
SESSION_FREE = frozenset({
    "login", "whoami", "pam-auth", "station status",
    "station serve",  # the service itself: run locally by the station's own user
    # the station's TLS key and certificate for a shared registry: run locally by the
    # station's own user (its token's PIN file is the authority), before the registry,
    # where operators and sessions live, will admit the station at all
    "station enroll-registry",
}) | REGISTRY_OPERATOR_COMMANDS

# Never through the station service (tools.service.protocol.LOCAL_COMMANDS), and refused
# should one arrive there anyway.
LOCAL_ONLY = REGISTRY_OPERATOR_COMMANDS | {"station serve", "station enroll-registry"}

# Commands that need a valid session but no particular scope: ending one's own session
# (without a session, `logout` is denied and recorded like any other denial).
ANY_SCOPE = frozenset({"logout"})

# The test rig: it stands for the physical world (inserting and pulling cards) and the
# card maker (making blank ones). It runs on a home and test token of its own, open mode
# only: on a station in operator mode every one of these is denied (exit 7, recorded),
# whatever the session (issue 11: rig and production are separate).
RIG_COMMANDS = frozenset({
    "rig up", "rig status", "rig down", "rig insert", "rig remove",
    "emulator run", "emulator counterfeit", "demo",
})


# What a command can reveal or change beyond what its command scope covers, and the scope
# that guards each (docs/scopes.md is this table in prose; a test keeps the two equal).
# "redact": without the scope the field is left out of the output (and not recorded);
# "refuse": without the scope the command is denied (exit 7, the denial recorded), because
# the field cannot be separated from what the command produces.
FIELD_SCOPES: dict[str, tuple[str, str]] = {
    "record_code": ("read-code", "redact"),
    "code_history": ("read-code", "redact"),
    "signature_certificate": ("read-identity", "refuse"),  # carries the 4 information
    "representative_request": ("read-identity", "refuse"),  # a 法定代理人 asks for a resident
    "recipient_table": ("operator-admin", "refuse"),
}

COMMAND_FIELDS: dict[str, tuple[str, ...]] = {
    "card list": ("record_code",),
    "card show": ("record_code", "code_history"),
    "card certs": ("signature_certificate",),  # with --with-sign
    "card sign": ("signature_certificate",),  # with --key sign (the default)
    "audit recipients": ("recipient_table",),  # with --load
    "audit disclose": ("record_code",),
    "audit self": ("record_code", "code_history", "representative_request"),
}


def field_scope(command: str, field: str) -> tuple[str, str]:
    """(scope, "redact" | "refuse") guarding ``field`` of ``command``; a field the table
    does not list for that command is a programming error, never silently allowed."""
    if field not in COMMAND_FIELDS.get(command, ()):
        raise KeyError(f"`juki {command}` has no field {field!r} in COMMAND_FIELDS")
    return FIELD_SCOPES[field]


def parse_scopes(text: str) -> frozenset[str]:
    """``S1,S2`` → a set of known scopes; an unknown or empty list is refused."""
    from ..errors import RequestError

    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise RequestError("scopes", f"unknown scope(s) {', '.join(unknown)}; "
                                     f"known: {', '.join(SCOPES)}")
    if not scopes:
        raise RequestError("scopes", "at least one scope is required")
    return scopes
