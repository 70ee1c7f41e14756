"""maxent_components: maximum-entropy RL components for PyTorch, native to TorchRL and tensordict."""

__version__ = "0.1.0"
