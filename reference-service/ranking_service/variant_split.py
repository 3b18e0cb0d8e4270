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


def choose_model(
    served: ServedModels, user_id: str, challenger_traffic: float
) -> tuple[str, RankingModel | None]:
    """The variant and the model that ranks for `user_id` (None: no model, use the fallback)."""
    champion, challenger = served.champion, served.challenger
    if (
        challenger is not None
        and challenger_traffic > 0
        and (champion is None or challenger.version != champion.version)
        and user_bucket(user_id) < challenger_traffic
    ):
        return CHALLENGER, challenger
    return CHAMPION, champion
