"""The card side: the project's card applications as virtual cards.

``ResidentCardOs`` (the resident card) and ``PivCard`` (the operator card) are small
card OSes over a persistent ``CardState``; ``vpcd`` attaches one to the real PC/SC
stack through the vsmartcard vpcd reader driver.
"""
