"""Import the generated PyTorch modules of a compiled spec (this module imports torch lazily).

`rocketc train`, `ablate` and `audit` run exactly the code `rocketc compile` writes: the spec is
rendered to a directory and its model.py/train.py imported under unique module names.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rocketc.backends.codegen import write
from rocketc.compiler import Compiled

_counter = 0


@dataclass
class Generated:
    """The imported `model` and `train` modules of one compiled spec, and where they live."""

    model: ModuleType
    train: ModuleType
    directory: Path
    compiled: Compiled


def load_generated(compiled: Compiled, directory: str | Path | None = None) -> Generated:
    """Render `compiled` into `directory` and import it.

    Without a directory the code goes to a new temporary one that the caller owns (rocketc's
    own commands always pass a directory: the run's `code/`, or one they clean up).
    """
    global _counter
    directory = Path(directory or tempfile.mkdtemp(prefix=f"rocketc-{compiled.spec.name}-"))
    write(compiled, directory)
    _counter += 1
    tag = f"rocketc_generated_{compiled.spec.name}_{_counter}"
    model = _import(f"{tag}_model", directory / "model.py")
    # train.py does `from model import ...`: give it this model module for the import.
    saved = sys.modules.get("model")
    sys.modules["model"] = model
    try:
        train = _import(f"{tag}_train", directory / "train.py")
    finally:
        if saved is None:
            sys.modules.pop("model", None)
        else:
            sys.modules["model"] = saved
    return Generated(model, train, directory, compiled)


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module
