"""MAGNET model components: encoders, experts, router, the fused catalogue scorer and the model."""
from ..schedule import RouteParams
from .experts import template_matrix
from .magnet import MAGNET, PairOutput, Precomputed

__all__ = ["MAGNET", "PairOutput", "Precomputed", "RouteParams", "template_matrix"]
