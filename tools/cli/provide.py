"""`juki provide ...`: provision of 本人確認情報 to recipients (agencies), in bulk."""

from __future__ import annotations

import click


@click.group("provide")
def provide() -> None:
    """Provide identity information to a recipient for a permitted purpose."""
