"""Shared fixtures: one real base checkpoint per test session, pretrained into a temporary cache."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from explainvec.models.checkpoint import Checkpoint, load_checkpoint
from explainvec.models.vit import GRID_PRESETS, build_vit


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A fresh explainvec cache folder for the whole session (nothing from the user's cache is used)."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["EXPLAINVEC_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def base_path(cache):
    """The demo's 4x4 base checkpoint, pretrained once (about a minute on 2 cores)."""
    from explainvec.training.base_cache import cached_base

    return cached_base("4x4")


@pytest.fixture(scope="session")
def base(base_path) -> Checkpoint:
    return load_checkpoint(base_path)


@pytest.fixture
def tiny_vit():
    """A randomly initialised 4x4 ViT with 5 classes."""
    torch.manual_seed(0)
    return build_vit({**GRID_PRESETS["4x4"], "num_classes": 5}).eval()


@pytest.fixture
def pair(tiny_vit):
    """A self-explaining stand-in (``tiny_vit`` nudged by noise) and ``tiny_vit`` as its prediction twin."""
    from tests.test_checkpoint import meta_for

    explain = copy.deepcopy(tiny_vit)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in explain.parameters():
            p.add_(0.01 * torch.randn_like(p))
    meta = meta_for(tiny_vit)
    return Checkpoint(explain, meta), Checkpoint(tiny_vit, meta)
