"""Training: pretraining the base, prediction-only fine-tuning, and explanation supervision."""

from explainvec.training.config import TrainConfig
from explainvec.training.explain import train_explainer
from explainvec.training.finetune import finetune
from explainvec.training.pretrain import pretrain

__all__ = ["TrainConfig", "finetune", "pretrain", "train_explainer"]
