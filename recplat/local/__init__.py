"""`recplat local`: the whole platform on one machine, as real processes wired by the contracts
of docs/architecture.md."""
