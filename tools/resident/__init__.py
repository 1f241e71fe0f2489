"""Work on resident cards in service: the verifier, card-info reads with the integrity
check, the record code over SCP03 and its change, and JPKI certificates and signatures."""
