"""Front end: load → spec (pydantic) → graph (networkx) → passes. Never imports torch.

`compile_file(path, overrides=())` runs the whole front end (with `--set`-style overrides) and
returns a `Compiled` (the checked spec and its annotated graph), which the back ends
(`rocketc.backends`), training (`rocketc.train`) and the rest take as their input. `embedded_spec`
finds a spec shipped with rocketc.
"""

from rocketc.compiler.embedded import embedded_spec
from rocketc.compiler.pipeline import Compiled, compile_file, compile_source, compile_text

__all__ = ["Compiled", "compile_file", "compile_source", "compile_text", "embedded_spec"]
