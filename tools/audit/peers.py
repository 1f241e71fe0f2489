"""Whom a station trusts for other stations' log entries: the station CA certificates it
holds outside the database (``registry-tls/station-ca.pem`` from its enrolment; the
registry operator's home: the station CA in its own token), with its station id, which
names its own checkpoints. A station of no shared registry has no anchors: only its own
entries can be proven, as before migration 10."""

from __future__ import annotations

from hsm.token import Hsm

from ..pki.log_signer_certs import station_ca_certificates
from ..registry.tls import station_ca_anchors
from ..station.home import StationHome
from .attestations import Peers


def peers_for(home: StationHome, hsm: Hsm) -> Peers:
    return Peers(home.station_id(),
                 (*station_ca_anchors(home.root), *station_ca_certificates(hsm)))
