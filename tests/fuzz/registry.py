"""The fuzz targets by name. A target is ``run(data: bytes) -> None`` that returns on
any input the code under test handles by its contract (a result, or the documented
``CardDataError``/``ValueError``), and raises on a real bug: any other exception, or a
``ContractViolation`` the target asserts (``decode(encode(x)) == x``, a status word on
every answer, no 9000 to a PIN-protected read without a VERIFY)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

TARGETS: dict[str, Target] = {}


class ContractViolation(AssertionError):
    """The code under test broke a rule the target checks (not a refusal it may make)."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]] = field(default=lambda: [])


def target(name: str, seeds: Callable[[], list[bytes]] | None = None
           ) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    """Register ``run`` under ``name`` (with a function giving seed inputs)."""
    def register(run: Callable[[bytes], None]) -> Callable[[bytes], None]:
        if name in TARGETS:
            raise ValueError(f"fuzz target {name} registered twice")
        TARGETS[name] = Target(name, run, seeds or (lambda: []))
        return run
    return register


def check(condition: object, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


@contextlib.contextmanager
def refusals(*allowed: type[BaseException]) -> Iterator[None]:
    """The documented refusals of a parser end the input quietly; anything else is a bug."""
    with contextlib.suppress(*allowed):
        yield


def load_all() -> dict[str, Target]:
    """Import every target module (each registers its targets) and return the table."""
    from . import (  # noqa: F401
        card_targets,
        cv_targets,
        host_targets,
        personalisation_targets,
        provide_targets,
        sm_card_targets,
        sm_targets,
        surface_targets,
        text_sm_targets,
        tools_targets,
    )

    return TARGETS
