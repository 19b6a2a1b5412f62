"""Training, evaluation and TorchScript export for the restoration-serve models."""
