"""``juki card pin reset`` and ``juki card renew``: counter work on an issued card (joined to
``juki card`` by ``card``)."""
