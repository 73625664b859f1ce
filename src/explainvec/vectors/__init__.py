"""Explainability vectors: the difference a self-explaining fine-tune makes, carried to other models."""

from explainvec.vectors.explainability_vector import ExplainabilityVector, backbone_parameters, block_of
from explainvec.vectors.lambda_search import LambdaPoint, choose_lambda, lambda_curve

__all__ = [
    "ExplainabilityVector",
    "LambdaPoint",
    "backbone_parameters",
    "block_of",
    "choose_lambda",
    "lambda_curve",
]
