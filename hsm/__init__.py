"""Everything PKCS#11 (python-pkcs11): token and session, key inventory by role, CA
signing, random challenges, signature checks. No card I/O, no click, no SQL."""
