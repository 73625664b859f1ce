"""Models: timm ViTs, attention masking, checkpoints and the self-explaining wrapper."""
