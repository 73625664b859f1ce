"""Explainability vectors: the difference a self-explaining fine-tune makes, carried to other models."""

from explainvec.vectors.edit import VectorEdit, block_of
from explainvec.vectors.explainability_vector import ExplainabilityVector, backbone_parameters
from explainvec.vectors.shared import train_shared_vector

__all__ = ["ExplainabilityVector", "VectorEdit", "backbone_parameters", "block_of", "train_shared_vector"]
