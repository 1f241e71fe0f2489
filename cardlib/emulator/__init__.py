"""The card side: the project's card applications as virtual cards.

``VirtualCard`` is a small card OS over a persistent ``CardState``; ``vpcd`` attaches
one to the real PC/SC stack through the vsmartcard vpcd reader driver.
"""
