"""`juki registry ...`: the registry operator's commands for a shared PostgreSQL registry
(station certificates, database roles, the recipient table). They run on the registry
operator's side with the administrative database connection, never through a station.

The commands live in ``registry_stations`` (station CA, enrolment, revocation) and
``registry_rules`` (roles and the administrative recipient table); importing them
registers them on this group.
"""

from __future__ import annotations

import click


@click.group("registry")
def registry_group() -> None:
    """Registry operator: station certificates, roles, the recipient table."""


def _register_commands() -> None:
    import importlib

    for module in ("registry_stations", "registry_rules"):
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise


_register_commands()
