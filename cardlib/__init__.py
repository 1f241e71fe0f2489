"""Everything APDU: ISO 7816-4 commands, BER-TLV, status words, transports and
one session class per card application. The card side lives in ``cardlib.emulator``.

No module here imports click, SQL or PKCS#11; only ``cardlib.pcsc`` imports pyscard.
"""
