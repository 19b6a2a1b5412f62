"""Synthetic degradations applied to clean photos to make training pairs (one idea per module)."""
