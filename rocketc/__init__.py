"""rocketc: a compiler for Rocket Launching twins (light net + booster net).

Importing this package must stay cheap: `rocketc check` and `rocketc compile` never import torch.
"""

__version__ = "0.1.0"
