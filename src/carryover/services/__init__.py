"""The services layer: the use cases the CLI and the API share.

Each service opens a transaction on the store, loads the domain objects it needs
(an account's book, a line, an order), applies the domain's rules and commits.
The CLI and the API only parse, call a service and render its result; the rules
themselves stay in carryover.domain.
"""
