"""explainvec: single-pass Shapley explanations for ViT classifiers, carried by an explainability vector."""

from explainvec.data import DOMAINS, ImageFolderDataset, Preprocess, SyntheticDataset, load_data
from explainvec.data.export import export_domain
from explainvec.evaluation.evaluate import suite_report
from explainvec.evaluation.metrics import METRICS
from explainvec.models.adapter import add_adapter
from explainvec.models.backbones import load_base, timm_base
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, load_checkpoint, save_checkpoint
from explainvec.models.clip import clip_base
from explainvec.models.self_explaining import Explanation, SelfExplainingViT, load, readout_of
from explainvec.models.vit import GRID_PRESETS, build_vit
from explainvec.shapley import exact_shapley, kernel_shap, permutation_shapley
from explainvec.shapley.model_games import MaskedModelGame, PixelMaskedGame
from explainvec.training import TrainConfig, finetune, pretrain, train_explainer
from explainvec.transfer import apply_vector, choose_lambda, lambda_curve
from explainvec.vectors import ExplainabilityVector, VectorEdit, train_shared_vector

__all__ = [
    "DOMAINS",
    "GRID_PRESETS",
    "METRICS",
    "Checkpoint",
    "CheckpointMeta",
    "ExplainabilityVector",
    "Explanation",
    "ImageFolderDataset",
    "MaskedModelGame",
    "PixelMaskedGame",
    "Preprocess",
    "SelfExplainingViT",
    "SyntheticDataset",
    "TrainConfig",
    "VectorEdit",
    "add_adapter",
    "apply_vector",
    "build_vit",
    "choose_lambda",
    "clip_base",
    "exact_shapley",
    "export_domain",
    "finetune",
    "kernel_shap",
    "lambda_curve",
    "load",
    "load_base",
    "load_checkpoint",
    "load_data",
    "permutation_shapley",
    "pretrain",
    "readout_of",
    "save_checkpoint",
    "suite_report",
    "timm_base",
    "train_explainer",
    "train_shared_vector",
]
