"""`audit verify`'s worker processes on a TLS-enrolled station (.ci/postgres-up's real
registry server, cert-only): they connect as the station's role with its identity (TLS
token key through the engine) and do the work themselves, rather than being refused and
leaving it all to the parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.station.home import StationHome

from ..conftest import ROOT, juki
from .registry_server import RegistryServer
from .test_registry_connection_token import enrolled_home, server  # noqa: F401 (fixture)

# In a process of its own: one SoftHSM configuration per process (the rig's is loaded here).
SCRIPT = """
import json, os, sys
from pathlib import Path
from tools.audit import log, verify_parallel
from tools.audit.provision import Release, record
from tools.service.context import Station

home, station_id = Path(sys.argv[1]), sys.argv[2]
station = Station(home)
registry, hsm = station.registry, station.hsm
release = Release(station_id, "Asia/Tokyo", None, "NENKIN", "B1-57")
for _ in range(9):
    record(registry, hsm, release, kind="provision", fields=["name"], resident_id=None,
           record_code=None, card_serial=None)
db = registry.connection()
size = log.size(db)
tasks = verify_parallel.plan(size, [size], 0, 0, chunk=4)
found = list(verify_parallel.results(db, tasks, workers=2, parallel_from=0))
print(json.dumps({"me": os.getpid(), "pids": sorted({r.pid for r in found}), "tasks": len(tasks),
                  "problems": [r.problem for r in found], "size": size,
                  "checked": sum(r.reached - r.start for r in found)}))
"""


def test_workers_connect_as_the_enrolled_station(server: RegistryServer,  # noqa: F811
                                                 tmp_path: Path) -> None:
    home, station_id = enrolled_home(server, tmp_path / "station")
    juki(home, "db", "upgrade")
    juki(home, "hsm", "init")
    # on the home's own registry: JUKI_DB (the suite's shared server in its PostgreSQL
    # pass) would win over the home's [registry] url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKCS11_")}
    env["JUKI_DB"] = StationHome(home).settings()["registry"]["url"]
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(home), station_id],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
                            env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found["pids"]) == 2 and 0 not in found["pids"] and found["me"] not in found["pids"]
    assert found["problems"] == [None] * found["tasks"] and found["checked"] == found["size"]
