"""`python -m carryover.cli` runs the command line (used by tests that spawn processes)."""

from carryover.cli import main

main()
