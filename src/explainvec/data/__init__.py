"""Data: the embedded synthetic domains and image folders, preprocessed as timm does."""

from explainvec.data.domains import DOMAINS, STYLES, Domain, Style, get_domain, render
from explainvec.data.folder import DataError, ImageFolderDataset
from explainvec.data.preprocess import Preprocess
from explainvec.data.shapes import SHAPES, rasterise
from explainvec.data.sources import load_data
from explainvec.data.synthetic import SyntheticDataset

__all__ = [
    "DOMAINS",
    "SHAPES",
    "STYLES",
    "DataError",
    "Domain",
    "ImageFolderDataset",
    "Preprocess",
    "Style",
    "SyntheticDataset",
    "get_domain",
    "load_data",
    "rasterise",
    "render",
]
