"""Training: runs the generated code with torch (`Recipe`, `TrainRecipe`), selects the shipped
epoch, checkpoints, trains data-parallel, proves the gradient block (audit) and exports the
light net with its report. The experiments and the CLI sit above it; serving never imports it.
"""
