"""The registry: cards and their life cycle, residents and their record codes,
operators, and (through ``tools.audit``) the provision log. ``registry.Registry`` is
the one entry point; ``records`` holds what it returns; ``schema`` its migrations on
both backends (``backend``: SQLite by default, PostgreSQL by URL)."""

from .records import CardEvent, CardRecord, Denial, OperatorRecord, RegistryError
from .registry import Registry, new_record_code
from .schema import CARD_STATUSES, REVOKE_REASONS

__all__ = ["CARD_STATUSES", "REVOKE_REASONS", "CardEvent", "CardRecord", "Denial",
           "OperatorRecord", "Registry", "RegistryError", "new_record_code"]
