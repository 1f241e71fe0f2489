"""The PostgreSQL roles of a shared registry, by name (the rules they carry are in
migration 8 and ``tools.registry.pg_roles``).

- ``juki_owner``: owns the schema; `juki db upgrade` runs as it. No station has it.
- ``juki_admin``: the registry operator's administrative role; alone may change the
  recipient table.
- ``juki_stations``: a NOLOGIN group holding what every station may do.
- one LOGIN role per station, ``juki_station_<id>``, member of ``juki_stations``. A
  station proves it with a TLS client certificate whose CN is that role name (the
  server's pg_ident map admits only CNs of this shape), its key in the station's token.
"""

from __future__ import annotations

import re

OWNER_ROLE = "juki_owner"
ADMIN_ROLE = "juki_admin"
STATIONS_GROUP = "juki_stations"
STATION_ROLE_PREFIX = "juki_station_"
STATION_ROLE_PATTERN = re.compile(r"^juki_station_[a-z0-9_]{1,40}$")


def station_role(station_id: str) -> str:
    """The database role (and certificate CN) of a station: lower case, every character
    outside ``[a-z0-9]`` as ``_``. Raises ValueError for an id that cannot be one."""
    body = re.sub(r"[^a-z0-9]", "_", station_id.lower())
    role = STATION_ROLE_PREFIX + body
    if not body or not STATION_ROLE_PATTERN.match(role):
        raise ValueError(f"station id {station_id!r} cannot name a database role "
                         "(1 to 40 letters, digits, '-' or '_')")
    return role
