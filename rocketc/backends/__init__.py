"""Back ends: turn a `Compiled` spec into artefacts (generated PyTorch, the sharing diagram).

Like the compiler, the back ends never import torch: they print text.
"""
