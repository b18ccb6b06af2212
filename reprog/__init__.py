"""reprog: adversarial reprogramming and adversarial examples on Hydra + PyTorch Lightning."""

from reprog.program_io import load_program

__all__ = ["load_program"]
