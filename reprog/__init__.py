"""reprog: adversarial reprogramming and adversarial examples on Hydra + PyTorch Lightning."""
