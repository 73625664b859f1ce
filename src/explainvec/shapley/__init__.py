"""Shapley value estimation for batches of cooperative games (image patches as players)."""

from .exact import MAX_EXACT_PLAYERS, all_coalitions, exact_shapley, shapley_weight_matrix
from .game import FunctionGame, Game, TabularGame, evaluate_in_chunks
from .kernel_shap import kernel_shap
from .permutation import permutation_shapley
from .sampling import sample_kernel_coalitions, shapley_kernel_sizes
from .values import ShapleyValues

__all__ = [
    "MAX_EXACT_PLAYERS",
    "FunctionGame",
    "Game",
    "ShapleyValues",
    "TabularGame",
    "all_coalitions",
    "evaluate_in_chunks",
    "exact_shapley",
    "kernel_shap",
    "permutation_shapley",
    "sample_kernel_coalitions",
    "shapley_kernel_sizes",
    "shapley_weight_matrix",
]
