"""The real components recplat's tests and benchmarks drive, in one place.

- `servers`: loopback ports, waiting on a condition with a deadline, and the real servers
  (an MLflow tracking server, Azurite) started as processes and stopped with their group, or
  an MLflow registry in a folder (SQLite) used in process;
- `rankers`: tiny real LightGBM rankers and feature snapshots, registered the way the training
  job registers them, in an MLflow server or an in-process SQLite registry;
- `service_process`: a real `ranking-serve` process on a free port;
- `checkov`: one way to run checkov that fails when it checked nothing.

Fixtures stay in the `conftest.py` files under `tests/`; they build on these. Benchmarks import
from here, never from `tests/`. Nothing here runs on import.
"""
