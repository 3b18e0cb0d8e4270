"""Which variant serves a user: the online experiment's salted, per-user challenger share.

A challenger takes traffic only as part of an online experiment: its registry version carries
an `experiment_id` tag (training sets it before it moves the alias; docs/architecture.md,
"Online experiments"). A user's bucket is `ranking_features.assignment.experiment_bucket`,
salted with that id, and users below `challenger_traffic` get the challenger. The same user
lands in the same arm for the whole experiment; a new experiment reshuffles the users, so one
unlucky slice of them does not see every challenger. The evaluator recomputes the arms from
the same function, so a fallback answer counts against the arm that failed.
"""

from __future__ import annotations

from ranking_features.assignment import experiment_bucket

from ranking_service.model_store import CHALLENGER, CHAMPION, RankingModel, ServedModels


def running_experiment(served: ServedModels, challenger_traffic: float) -> str | None:
    """The online experiment every request is part of now: the `experiment_id` tag of a
    challenger that differs from the champion, while the brand gives challengers traffic.
    None means no experiment runs, and every user gets the champion."""
    champion, challenger = served.champion, served.challenger
    if (
        challenger is None
        or challenger_traffic <= 0
        or (champion is not None and challenger.version == champion.version)
    ):
        return None
    return challenger.experiment_id


def choose_model(
    served: ServedModels, user_id: str, challenger_traffic: float
) -> tuple[str, RankingModel | None]:
    """The variant and the model that ranks for `user_id` (None: no model, use the fallback)."""
    experiment_id = running_experiment(served, challenger_traffic)
    if experiment_id is not None and experiment_bucket(experiment_id, user_id) < challenger_traffic:
        return CHALLENGER, served.challenger
    return CHAMPION, served.champion


def experiment_started_at(served: ServedModels, challenger_traffic: float) -> float | None:
    """When the running experiment started (epoch seconds), or None when none runs."""
    if running_experiment(served, challenger_traffic) is None:
        return None
    assert served.challenger is not None
    return served.challenger.experiment_started_at
