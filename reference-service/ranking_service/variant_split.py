"""Which variant serves a user: a deterministic, per-user challenger share.

A user is hashed into [0, 1); users below `challenger_traffic` get the challenger whenever it is
a different version from the champion. The same user always lands in the same bucket, so a
user sees one model consistently and online CTR per variant compares two stable populations.
"""

from __future__ import annotations

import hashlib

from ranking_service.model_store import CHALLENGER, CHAMPION, RankingModel, ServedModels


def user_bucket(user_id: str) -> float:
    """A stable, uniform position of the user in [0, 1)."""
    digest = hashlib.blake2b(user_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def challenger_takes_traffic(served: ServedModels, challenger_traffic: float) -> bool:
    """Whether a challenger, other than the champion, serves a share of the users."""
    champion, challenger = served.champion, served.challenger
    return (
        challenger is not None
        and challenger_traffic > 0
        and (champion is None or challenger.version != champion.version)
    )


def choose_model(
    served: ServedModels, user_id: str, challenger_traffic: float
) -> tuple[str, RankingModel | None]:
    """The variant and the model that ranks for `user_id` (None: no model, use the fallback)."""
    if (
        challenger_takes_traffic(served, challenger_traffic)
        and user_bucket(user_id) < challenger_traffic
    ):
        return CHALLENGER, served.challenger
    return CHAMPION, served.champion


def running_experiment(served: ServedModels, challenger_traffic: float) -> str | None:
    """The online experiment every request is part of now: the `experiment_id` tag of the
    challenger while it takes traffic (both arms log it), else None."""
    if challenger_takes_traffic(served, challenger_traffic):
        assert served.challenger is not None
        return served.challenger.experiment_id
    return None
