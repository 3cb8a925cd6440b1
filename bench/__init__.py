"""`make bench`: fanout measured as its users judge it. Prints a table; `--json PATH` writes the figures."""
