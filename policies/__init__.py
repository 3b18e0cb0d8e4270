"""The recplat CrossGuard policies, importable without starting a policy server."""
