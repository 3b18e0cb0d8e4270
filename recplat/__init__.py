"""recplat: the command-line tool of the multi-brand recommendation platform."""
