"""explainvec: single-pass Shapley explanations for ViT classifiers, carried by an explainability vector."""

from importlib.metadata import version

from explainvec.data import DOMAINS, ImageFolderDataset, Preprocess, SyntheticDataset, load_data
from explainvec.data.export import export_domain
from explainvec.data.fashion import FashionMNIST
from explainvec.evaluation.attribution import PatchAttribution, explain_func
from explainvec.evaluation.evaluate import suite_report
from explainvec.evaluation.heatmaps import overlay
from explainvec.evaluation.metrics import METRICS
from explainvec.models.adapter import add_adapter
from explainvec.models.backbones import load_base, timm_base
from explainvec.models.checkpoint import Checkpoint, CheckpointMeta, load_checkpoint, save_checkpoint
from explainvec.models.clip import clip_base
from explainvec.models.contributions import direct_logits
from explainvec.models.huggingface import hf_base, hf_checkpoint
from explainvec.models.in_memory import wrap
from explainvec.models.self_explaining import Explanation, SelfExplainingViT, load, readout_of
from explainvec.models.vit import GRID_PRESETS, build_vit
from explainvec.shapley import exact_shapley, kernel_shap, permutation_shapley
from explainvec.shapley.model_games import MaskedModelGame, PixelMaskedGame
from explainvec.study import Study, run_study, study_figures, study_table
from explainvec.training import TrainConfig, finetune, pretrain, train_explainer
from explainvec.transfer import apply_vector, choose_lambda, lambda_curve
from explainvec.vectors import ExplainabilityVector, VectorEdit, train_shared_vector

__version__ = version("explainvec")

__all__ = [
    "DOMAINS",
    "GRID_PRESETS",
    "METRICS",
    "Checkpoint",
    "CheckpointMeta",
    "ExplainabilityVector",
    "Explanation",
    "FashionMNIST",
    "ImageFolderDataset",
    "MaskedModelGame",
    "PatchAttribution",
    "PixelMaskedGame",
    "Preprocess",
    "SelfExplainingViT",
    "Study",
    "SyntheticDataset",
    "TrainConfig",
    "VectorEdit",
    "add_adapter",
    "apply_vector",
    "build_vit",
    "choose_lambda",
    "clip_base",
    "direct_logits",
    "exact_shapley",
    "explain_func",
    "export_domain",
    "finetune",
    "hf_base",
    "hf_checkpoint",
    "kernel_shap",
    "lambda_curve",
    "load",
    "load_base",
    "load_checkpoint",
    "load_data",
    "overlay",
    "permutation_shapley",
    "pretrain",
    "readout_of",
    "run_study",
    "save_checkpoint",
    "study_figures",
    "study_table",
    "suite_report",
    "timm_base",
    "train_explainer",
    "train_shared_vector",
    "wrap",
]
