"""One session class per card application (host side)."""
