"""MAGNET model components."""
from .experts import ANCHORS, EXPERT_NAMES, MODALITIES, N_EXPERTS, ROLES, template_matrix
from .magnet import MAGNET, PairOutput, Precomputed, RouteParams

__all__ = ["ANCHORS", "EXPERT_NAMES", "MODALITIES", "N_EXPERTS", "ROLES", "template_matrix",
           "MAGNET", "PairOutput", "Precomputed", "RouteParams"]
