"""``juki crl``: certificate revocation lists for relying parties outside the station."""
