"""How images become model inputs: size, normalisation and resizing, as timm's data config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Preprocess(BaseModel):
    """A timm-style data config; ``create_transform(**preprocess.timm_kwargs())`` builds the transform."""

    model_config = ConfigDict(frozen=True)

    image_size: int = Field(gt=0)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    crop_pct: float = Field(default=1.0, gt=0, le=1)

    def timm_kwargs(self) -> dict:
        """Keyword arguments for ``timm.data.create_transform`` (evaluation mode)."""
        return {
            "input_size": (3, self.image_size, self.image_size),
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }
