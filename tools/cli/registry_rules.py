"""`juki registry recipients`: the registry operator's administrative path to the
recipient table of a shared PostgreSQL registry (stations may only read it: migration 8).

The change commits with its 操作履歴 event ``recipient-table-changed`` in one
transaction, or neither does. The event is recorded as any station records one, by the
registry operator's own home (``--ca-home``, the home whose token holds the station CA):
its token's audit-entry MAC key authenticates the entry and its log-signing key signs the
append (certified by its own station CA in ``log_signers`` first, so that every station
can check it), its station id names where it was made, the operator is the OS account
that ran the command (its authority, as for the other registry-operator commands). The
database admits the entry because the administrative roles are not station roles (only
those are bound to a station id).
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from .common import emit, json_option
from .registry import registry_group


@registry_group.command("recipients")
@click.option("--load", "load_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Add the recipients and purposes of this TOML file.")
@click.option("--admin-db", required=True, metavar="URL",
              help="Administrative connection to the registry (postgresql://, peer auth as "
                   "juki_owner or a member of juki_admin).")
@click.option("--ca-home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The registry operator's home: its token MACs the table's event.")
@json_option
def registry_recipients(load_file: Path, admin_db: str, ca_home: Path, as_json: bool) -> None:
    """Add recipients and purposes to the shared registry's table, with its event."""
    from hsm.errors import KeyNotFoundError

    from ..audit import recipients
    from ..audit.provision import load_recipients, release_for
    from ..pki.log_signer_certs import ensure_own_log_signer
    from ..registry import Registry, RegistryError
    from ..station.home import StationHome

    if not admin_db.startswith(("postgresql://", "postgres://")):
        raise RegistryError("--admin-db must be a postgresql:// URL: a SQLite registry's "
                            "table is loaded by its station (`juki audit recipients --load`)")
    home = StationHome(ca_home.resolve())
    release = release_for(home, f"os:{getpass.getuser()}", "RECIPIENT-TABLE", "load")
    registry = Registry(admin_db)
    try:
        hsm = home.open_token()
        # the event is signed by this home's log key: certified first, so that stations
        # can check it (by the station CA they hold), once per key
        ensure_own_log_signer(hsm, home.station_id(), registry.connection())
        added = load_recipients(registry, hsm, release, load_file)
        found = recipients.listed(registry)
    except KeyNotFoundError as exc:  # the home's token has no audit-entry MAC key yet
        raise KeyNotFoundError(f"{exc}; for the registry operator's home: "
                               f"`juki --home {home.root} hsm init`") from None
    finally:
        registry.close()
    emit(as_json, {"added": added, "recipients": [r.as_json() for r in found]},
         f"{load_file}: {len(added)} purpose(s) added"
         + "".join(f"\n  {pair}" for pair in added))
