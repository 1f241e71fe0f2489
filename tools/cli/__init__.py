"""The click command line, a client of the services below it. ``main`` holds the root
group and the exit-code map; each other module is one command group (see
docs/architecture.md for the command → module table). Nothing outside this package
imports it."""
