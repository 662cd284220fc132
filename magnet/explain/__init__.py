"""Explanations over a loaded checkpoint (spec §8). Everything here reads a checkpoint and its
dataset and computes; nothing trains, and nothing here imports the training stack.

* :mod:`.context` — :class:`ExplainContext`, a checkpoint opened on its dataset.
* :mod:`.cases` — one user's recommendations, each explained exactly.
* :mod:`.evidence` — the evidence behind a recommendation in words.
* :mod:`.aggregates` — routing tables, utilization, held-out ranks, typical cases.
* :mod:`.trace` — what the training trace says about routing.
* :mod:`.counterfactual` — knockouts: an item without one modality, a user's list without one.
* :mod:`.fidelity` — how faithful the explanations are, against the model and planted truth.

Attribution is exact: score = base + Σ_{e,m} g_e·c_{e,m}, the base counting as B.
"""
from __future__ import annotations

from .aggregates import (activity_bucket, family_sums, held_out_pair_ranks, held_out_ranks,
                         relative_to_users, routing_table, sample_users, typical_cases,
                         user_reliance, utilization)
from .cases import ItemExplanation, case_study, case_study_table, explain_items, ranks_of, recommend, style_label
from .context import ExplainContext
from .counterfactual import knockout_effects, without_modality
from .fidelity import Fidelity, measure
from .evidence import strongest_cue
from .trace import final_routing, gate_columns, has_expert_trace, most_used, trace_family_shares

__all__ = ["ExplainContext", "Fidelity", "ItemExplanation", "knockout_effects", "measure", "relative_to_users",
           "user_reliance", "without_modality", "activity_bucket", "case_study", "case_study_table",
           "explain_items", "family_sums", "final_routing", "gate_columns", "has_expert_trace",
           "held_out_pair_ranks", "held_out_ranks", "most_used", "ranks_of", "recommend",
           "routing_table", "sample_users", "strongest_cue", "style_label",
           "trace_family_shares", "typical_cases", "utilization"]
