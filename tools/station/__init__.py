"""The station's basics, shared by every service room: its home directory and
settings, PIN sources, the scope table, the readers and the card a command works on,
process liveness, and the bridge from token keys to secure channels."""
