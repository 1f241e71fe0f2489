"""The process's one logged-in session to the token, and the lock around every call.

SoftHSM under python-pkcs11 runs without locking callbacks and does no locking of its
own: two threads in it at once crash the interpreter. So every PKCS#11 call made by
this project goes through ``Hsm.call`` (or runs inside ``with hsm.locked()``), which
holds one process-wide re-entrant lock. python-pkcs11 also allows one login per token
per process, hence one shared session, reopened after a failure or a fork.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pkcs11

from .config import TokenConfig
from .errors import HsmConfigError, HsmError, TokenNotFoundError

log = logging.getLogger(__name__)
T = TypeVar("T")

PKCS11_LOCK = threading.RLock()
_LIBRARIES: dict[str, pkcs11.lib] = {}
_SESSIONS: dict[tuple[str, str], Hsm] = {}
_OWNER_PID = os.getpid()
_SOFTHSM_CONF_IN_USE: str | None = None


def _forget_after_fork() -> None:
    global _OWNER_PID
    if os.getpid() != _OWNER_PID:
        _LIBRARIES.clear()
        _SESSIONS.clear()
        _OWNER_PID = os.getpid()


def _library(config: TokenConfig) -> pkcs11.lib:
    global _SOFTHSM_CONF_IN_USE
    if config.softhsm2_conf is not None:
        wanted = str(config.softhsm2_conf)
        if _SOFTHSM_CONF_IN_USE not in (None, wanted):
            raise HsmConfigError(
                "this process already initialised SoftHSM with another configuration"
            )
        os.environ["SOFTHSM2_CONF"] = wanted
        _SOFTHSM_CONF_IN_USE = wanted
    if config.module not in _LIBRARIES:
        if not os.path.exists(config.module):
            raise HsmConfigError(f"PKCS#11 module {config.module} does not exist")
        _LIBRARIES[config.module] = pkcs11.lib(config.module)
    return _LIBRARIES[config.module]


def library_loaded(module: str) -> bool:
    """Whether this process has loaded (C_Initialize'd) ``module`` already."""
    _forget_after_fork()
    return module in _LIBRARIES


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Hsm:
    """A logged-in session on one token; obtain it with ``open_token``."""

    def __init__(self, config: TokenConfig) -> None:
        self.config = config
        self._session: pkcs11.Session | None = None

    def __repr__(self) -> str:
        return f"Hsm(token_label={self.config.token_label!r})"

    @contextmanager
    def locked(self) -> Iterator[pkcs11.Session]:
        """Hold the PKCS#11 lock and yield the session; errors become ``HsmError``."""
        with PKCS11_LOCK:
            try:
                yield self._open()
            except pkcs11.PKCS11Error as exc:
                # Whatever failed, the next call starts from a fresh session: a session
                # in an unknown state is never reused.
                self.reset()
                raise HsmError(f"PKCS#11 error: {describe(exc)}") from exc

    def call(self, operation: Callable[[pkcs11.Session], T]) -> T:
        with self.locked() as session:
            return operation(session)

    def _open(self) -> pkcs11.Session:
        if self._session is not None:
            return self._session
        lib = _library(self.config)
        try:
            token = lib.get_token(token_label=self.config.token_label)
        except pkcs11.NoSuchToken:
            raise TokenNotFoundError(
                f"no token labelled {self.config.token_label!r} in {self.config.module}"
            ) from None
        self._session = token.open(rw=True, user_pin=self.config.read_pin())
        log.debug("opened session on token %s", self.config.token_label)
        return self._session

    def reset(self) -> None:
        """Drop the session so the next call opens a fresh one."""
        with PKCS11_LOCK:
            session, self._session = self._session, None
            if session is not None:
                try:
                    session.close()
                except pkcs11.PKCS11Error:
                    log.debug("closing a broken session failed", exc_info=True)

    def random_bytes(self, count: int) -> bytes:
        """``count`` bytes from the token's RNG (C_GenerateRandom)."""
        if count <= 0:
            raise ValueError("count must be positive")
        return self.call(lambda s: bytes(s.generate_random(count * 8)))


def open_token(config: TokenConfig) -> Hsm:
    """The shared session for ``config``'s token in this process."""
    with PKCS11_LOCK:
        _forget_after_fork()
        key = (config.module, config.token_label)
        if key not in _SESSIONS:
            _SESSIONS[key] = Hsm(config)
        return _SESSIONS[key]
