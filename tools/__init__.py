"""The applications: issuance station, verifier, test rig, registry and the click CLI.
The only package that knows about click, SQL and both cards and keys at once."""
