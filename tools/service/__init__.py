"""The station service: the one place that opens the station's registry and token for a
command, and decides whether the command may run (operator mode: session and scope).
Today it runs inside each `juki` process; it sits above every service room because it
composes them (sessions from `operators`, interrupted issuances from `issuance`)."""
