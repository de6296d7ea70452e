"""Customer ratings: CSAT, NPS and CES (SPEC §3, §7 [16], [25], D26, D27).

The latest rating per survey counts. A re-rating retracts the earlier one
from its bucket and adds the new one in its own, credited to every agent who
wrote before it. Any rating retracts the conversation's `conversations_unrated`.
"""

from __future__ import annotations

from livemetrics.engine.context import Context
from livemetrics.engine.outputs import Observation


def category(survey: str, score: int) -> str | None:
    """The SPEC §3 counter a score falls in, if the survey has categories."""
    if survey == "csat":
        if score >= 4:
            return "csat_satisfied"
        return "csat_neutral" if score == 3 else "csat_unsatisfied"
    if survey == "nps":
        if score >= 9:
            return "nps_promoters"
        return "nps_passives" if score >= 7 else "nps_detractors"
    return None


def on_rated(ctx: Context, ts_us: int, survey: str, score: int) -> None:
    conv = ctx.conv
    for obs in conv.ratings.pop(survey, ()):
        ctx.retract(obs)
    for obs in conv.unrated:
        ctx.retract(obs)
    conv.unrated = []
    agents = tuple(conv.writers)
    made: list[Observation] = [ctx.observe_kept(f"{survey}_score", float(score), ts_us, agents)]
    counter = category(survey, score)
    if counter is not None:
        made.append(ctx.observe_kept(counter, 1, ts_us, agents))
    conv.ratings[survey] = made
    if survey == "csat":
        conv.csat_score = score
