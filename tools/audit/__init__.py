"""The provision record: every release of identity information, in an append-only,
Merkle-tree-backed log inside the registry, with checkpoints signed in the token."""
