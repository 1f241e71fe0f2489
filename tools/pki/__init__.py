"""The station's PKI beyond issuance: certificate revocation lists per issuing CA,
signed in the token (issue 13)."""
