"""Issuing resident cards: request validation, personalisation of one blank card,
batches over several readers, and recovery of interrupted issuances."""
