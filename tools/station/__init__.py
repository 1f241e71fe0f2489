"""The station: its home directory and settings, the operator-mode context every
command runs in (session and scope checks), PIN sources, the scope table, the readers
and the card it works on, and the bridge from token keys to secure channels."""
