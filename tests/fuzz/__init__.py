"""Coverage-guided fuzz targets (atheris): every host parser of card data and every
emulator command handler. `make fuzz` runs them; `tests/unit/test_fuzz_regressions.py`
replays the saved crash inputs and each target's seeds."""
