"""Which arm of an online experiment a user is in: one definition for the service and the evaluator.

A user's bucket is `blake2b(f"{experiment_id}:{user_id}")` read as a number in [0, 1); buckets
below `challenger_traffic` belong to the challenger arm (docs/architecture.md, "Online
experiments"). Salting with the experiment id gives every experiment a fresh, independent
split, so the users who saw the last challenger are not the ones who see the next. The
evaluator recomputes each user's arm with the same function, so a request the fallback
answered still counts against the arm whose model failed it. Standard library only.
"""

from __future__ import annotations

import hashlib

from ranking_features.mlflow_names import CHALLENGER, CHAMPION

# An arm is named after the alias of the version it serves.
CHAMPION_ARM = CHAMPION
CHALLENGER_ARM = CHALLENGER
ARMS = (CHAMPION_ARM, CHALLENGER_ARM)


def experiment_bucket(experiment_id: str, user_id: str) -> float:
    """The user's stable, uniform position in [0, 1) within one experiment."""
    digest = hashlib.blake2b(f"{experiment_id}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def experiment_arm(experiment_id: str, user_id: str, challenger_traffic: float) -> str:
    """`CHALLENGER_ARM` when the user's bucket is below `challenger_traffic`, else
    `CHAMPION_ARM`."""
    if experiment_bucket(experiment_id, user_id) < challenger_traffic:
        return CHALLENGER_ARM
    return CHAMPION_ARM
