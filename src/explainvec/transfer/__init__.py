"""The transfer: a target model plus λ·τ, with λ chosen without labels."""

from explainvec.transfer.apply import apply_vector
from explainvec.transfer.lambda_search import (
    DEFAULT_GRID,
    LAMBDA_CRITERIA,
    LambdaPoint,
    choose_lambda,
    lambda_curve,
)

__all__ = ["DEFAULT_GRID", "LAMBDA_CRITERIA", "LambdaPoint", "apply_vector", "choose_lambda", "lambda_curve"]
