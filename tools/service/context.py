"""The station as one command sees it: its home, and the registry and token opened only
when the command has been authorised.

This is where operator mode is enforced: ``authorize`` checks the session and the scope
of the command about to run, records a denial, and only then lets ``registry`` and
``hsm`` open. The CLI creates one ``Station`` per invocation; it never prompts or prints
(warnings go to the ``warn`` callback the caller supplies).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PermissionDeniedError, StationConfigError
from ..station.caller import CURRENT_POLICY, caller
from ..station.home import StationHome

if TYPE_CHECKING:
    from hsm.token import Hsm

    from ..audit.events import EventRecorder
    from ..operators.session import OperatorSession
    from ..registry import Registry
    from ..registry.tls import ClientIdentity

log = logging.getLogger(__name__)


class Station:
    """Lazily opened resources of the station home for one command (imports are lazy
    so that `juki --help` and `juki rig` do not load PKCS#11 or SQLite)."""

    def __init__(self, home: Path, db: str | None = None,
                 warn: Callable[[str], None] = log.warning) -> None:
        self.home = StationHome(home)
        self.db = db
        self._warn = warn
        self._registry: Registry | None = None
        self._hsm: Hsm | None = None
        self._authorized = False
        self._mode: str | None = None
        self._root_checked = False
        self.session: OperatorSession | None = None
        self.command: str | None = None

    @property
    def actor(self) -> str | None:
        """Who is acting, for event logs: the logged-in operator, if any."""
        return self.session.operator_id if self.session else None

    def authorize(self, command: str) -> None:
        """Decide whether ``command`` may run; in operator mode a denial is recorded and
        raises ``PermissionDeniedError``. Registry and token stay closed until this passed."""
        from ..operators.session import current_session
        from ..station.scopes import (
            ANY_SCOPE,
            COMMAND_SCOPES,
            LOCAL_ONLY,
            RIG_COMMANDS,
            SESSION_FREE,
        )

        self.command = command
        if command in LOCAL_ONLY and caller().via_service:
            raise PermissionDeniedError(f"`juki {command}` runs only locally, as the account "
                                        "whose token it uses, never through a station service")
        rig_on_a_rig_home = command in RIG_COMMANDS and self.home.configured_mode() != "operator"
        if rig_on_a_rig_home or command in SESSION_FREE or self.mode() == "open":
            # the rig never asks a registry what mode it is in: a rig home is no station,
            # and a station says "operator" in its config once it has reached it
            self._authorized = True
            return
        scope = COMMAND_SCOPES.get(command)
        operator = None
        try:
            if command in RIG_COMMANDS:
                operator = self._operator_if_any()
                raise PermissionDeniedError(
                    f"`juki {command}` is a test-rig command: refused on a station in operator "
                    "mode (a rig has a home and a test token of its own)")
            if scope is None and command not in ANY_SCOPE:
                raise PermissionDeniedError(f"`juki {command}` has no scope assigned: "
                                            "denied by default")
            session = current_session(self.home, self._open_hsm(), self._open_registry())
            operator = session.operator_id
            if scope is not None and scope not in session.scopes:
                raise PermissionDeniedError(f"operator {operator} lacks the scope {scope!r} "
                                            f"that `juki {command}` needs")
        except PermissionDeniedError as exc:
            self._open_registry().record_denial(self.home.station_id(), operator, command,
                                                scope, str(exc))
            raise
        self.session = session
        self._authorized = True

    def holds(self, scope: str) -> bool:
        """Does this command's caller hold ``scope``? (An open station has no scopes.)"""
        self._require_authorized()
        if self.mode() == "open":
            return True
        return self.session is not None and scope in self.session.scopes

    def require(self, scope: str, what: str) -> None:
        """A scope the command needs beyond its own (``issue recover`` finishing a counter
        operation needs that operation's scope); a denial is recorded and raised."""
        if self.holds(scope):
            return
        message = f"operator {self.actor} lacks the scope {scope!r} that {what} needs"
        self._open_registry().record_denial(self.home.station_id(), self.actor,
                                            self.command or "", scope, message)
        raise PermissionDeniedError(message)

    def reveal(self, field: str) -> bool:
        """May this command reveal (or change) ``field``? By ``scopes.FIELD_SCOPES``: True
        if the caller holds its scope; else False for a field that is redacted, and for a
        field that cannot be left out a recorded denial and ``PermissionDeniedError``."""
        from ..station.scopes import field_scope

        if self.command is None:
            raise PermissionDeniedError("the command was not authorised")
        scope, policy = field_scope(self.command, field)
        if self.holds(scope):
            return True
        if policy == "redact":
            return False
        operator = self.actor
        message = (f"operator {operator} lacks the scope {scope!r} that {field.replace('_', ' ')} "
                   f"of `juki {self.command}` needs")
        self._open_registry().record_denial(self.home.station_id(), operator, self.command,
                                            scope, message)
        raise PermissionDeniedError(message)

    def _operator_if_any(self) -> str | None:
        """The logged-in operator, for the record of a denial that no session can lift."""
        from ..operators.session import current_session

        try:
            return current_session(self.home, self._open_hsm(), self._open_registry()).operator_id
        except PermissionDeniedError:
            return None

    def mode(self) -> str:
        """What this station is in: ``operator`` when its config says so; ``open`` when
        root said so (a root-owned config, run locally; ``station serve --open`` in the
        service's unit); otherwise ``open`` only until it has an active operator-admin,
        from when on ``operator`` is written to its config (it never falls open again,
        not even when the last admin is suspended)."""
        if self._mode is None:
            self._mode = self._resolve_mode()
        return self._mode

    def _resolve_mode(self) -> str:
        if self.home.configured_mode() == "operator":
            return "operator"
        if caller().via_service:
            if CURRENT_POLICY.get().allows_open:
                return "open"
        elif self.home.open_by_root():
            return "open"
        if not self._open_registry().has_active_admin():
            return "open"  # nobody to log in yet: the first admin is enrolled open
        settings = self.home.settings()
        settings.setdefault("station", {})["mode"] = "operator"
        self.home.write_settings(settings)
        log.warning("station %s has an operator-admin: operator mode from now on",
                    self.home.root)
        return "operator"

    def _refuse_unsafe_home_as_root(self) -> None:
        """Run locally by root, juki would load the module and read the PIN file and
        registry its home names: a home anyone but root could change is refused (issue
        11, defect 1; through the service the service checks its home when it starts)."""
        if self._root_checked or caller().via_service or os.geteuid() != 0:
            return
        from .home_check import home_problems

        problems = home_problems(self.home, 0)
        if problems:
            raise StationConfigError("running as root, juki will not use this station home "
                                     "(someone else could change what it loads or reads):\n  "
                                     + "\n  ".join(problems))
        self._root_checked = True

    def _require_authorized(self) -> None:
        if not self._authorized and self.mode() != "open":
            raise PermissionDeniedError("this station is in operator mode and the command "
                                        "was not authorised")

    @property
    def registry(self) -> Registry:
        self._require_authorized()
        return self._open_registry()

    @property
    def hsm(self) -> Hsm:
        self._require_authorized()
        return self._open_hsm()

    def _open_registry(self) -> Registry:
        if self._registry is None:
            from ..issuance.recovery import interrupted
            from ..registry import Registry

            self.home.ensure()
            self._refuse_unsafe_home_as_root()
            self._registry = Registry(self.db or self.home.registry_target(),
                                      client=self._registry_identity())
            self._registry.event_sink = self._event_recorder()
            for card in interrupted(self._registry):
                self._warn(f"the issuance of card {card.serial} (by {card.owner}, started "
                           f"{card.created_at}) was interrupted; it is marked failed when the "
                           "card is presented again, or run `juki issue recover`")
        return self._registry

    def _registry_identity(self) -> ClientIdentity | None:
        """The station's TLS identity for a shared registry (`juki station enroll-registry`),
        its token opened first (python-pkcs11 before libp11: ``tools.registry.tls``)."""
        from ..registry.tls import station_identity

        identity = station_identity(self.home)
        if identity is not None:
            self._open_hsm()
        return identity

    def _event_recorder(self) -> EventRecorder:
        """操作履歴 of this command: each registry change commits with an event naming
        this station, the operator of the session and the scope of the command."""
        from ..audit.events import Actor, EventRecorder
        from ..audit.provision import release_for
        from ..station.scopes import COMMAND_SCOPES

        def actor() -> Actor:
            zone = release_for(self.home, None, "", "").zone
            scope = COMMAND_SCOPES.get(self.command or "")
            return Actor(self.home.station_id(), zone, self.actor, scope)

        return EventRecorder(self._open_hsm, actor)

    def checked_settings(self) -> dict[str, dict[str, str]]:
        """The home's settings for a command that opens neither the token nor the registry
        (a relying party's `verify --offline --ca --crl`): run by root, the same check of
        the home as opening them (its config names files the command trusts)."""
        self._require_authorized()
        self._refuse_unsafe_home_as_root()
        return self.home.settings()

    def _open_hsm(self) -> Hsm:
        if self._hsm is None:
            self._refuse_unsafe_home_as_root()
            self._hsm = self.home.open_token()
        return self._hsm
