"""Front end: load → spec (pydantic) → graph (networkx) → passes. Never imports torch.

`compile_file(path)` runs the whole front end and returns a `Compiled` (the checked spec and its
annotated graph), which the back ends (`rocketc.backends`) and the runtime (`rocketc.runtime`)
take as their input.
"""

from rocketc.compiler.pipeline import Compiled, compile_file, compile_source, compile_text

__all__ = ["Compiled", "compile_file", "compile_source", "compile_text"]
