"""The vocabulary: expert names and order, triplet templates."""
from __future__ import annotations

import torch

from magnet.model.experts import template_matrix
from magnet.vocab import EXPERT_NAMES, ROLE_WEIGHTS


def test_expert_names_and_order():
    assert EXPERT_NAMES == ("B-Dom", "B-Bal", "B-Comp", "A-Dom", "A-Bal", "A-Comp",
                            "S-Dom", "S-Bal", "S-Comp")


def test_templates_rows_sum_to_one_and_anchor_placement():
    w = template_matrix()
    assert w.shape == (9, 3)
    torch.testing.assert_close(w.sum(1), torch.ones(9))
    # B-Dom = (0.70, 0.15, 0.15); A-Bal = (0.30, 0.40, 0.30); S-Comp = (0.40, 0.40, 0.20)
    torch.testing.assert_close(w[0], torch.tensor([0.70, 0.15, 0.15]))
    torch.testing.assert_close(w[4], torch.tensor([0.30, 0.40, 0.30]))
    torch.testing.assert_close(w[8], torch.tensor([0.40, 0.40, 0.20]))
    for e, name in enumerate(EXPERT_NAMES):
        anchor, role = name.split("-")
        assert w[e, "BAS".index(anchor)] == ROLE_WEIGHTS[role][0]
