"""Explainability vectors: the difference a self-explaining fine-tune makes, carried to other models."""

from explainvec.vectors.explainability_vector import ExplainabilityVector, backbone_parameters, block_of

__all__ = ["ExplainabilityVector", "backbone_parameters", "block_of"]
