"""Counter work on issued cards (issue 13): moving with the card (特例転出・特例転入),
changes to the 4 information, PIN reset, renewal. Each operation is journalled in the
registry (``tools.registry.operations``) before its first card write, runs over the
issuer domain's SCP03 session with token-derived keys (``card_session``), and commits its
registry change with its event in one transaction."""
