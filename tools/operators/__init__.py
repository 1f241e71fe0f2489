"""Operators: enrolment of their PIV cards, login (card, PIN, token challenge), and the
station session that login starts."""
