"""Import the generated PyTorch modules of a compiled spec (this module imports torch lazily).

`rocketc train`, `ablate` and `audit` run exactly the code `rocketc compile` writes: the spec is
rendered to a directory and its model.py/train.py executed as fresh modules. They are kept out
of `sys.modules`: a run that loads many specs (ablate, tune) does not accumulate them, and a
user's own module named `model` is never shadowed, not even while train.py imports.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import itertools
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rocketc.backends.codegen import write
from rocketc.compiler import Compiled

_counter = itertools.count(1)


@dataclass
class Generated:
    """The imported `model` and `train` modules of one compiled spec, and where they live."""

    model: ModuleType
    train: ModuleType
    directory: Path
    compiled: Compiled

    @contextlib.contextmanager
    def importable(self) -> Iterator[None]:
        """Make both modules findable by name for the block: pickle saves generated classes by
        module name, so pickling or unpickling their instances happens inside this block."""
        with _registered(self.model), _registered(self.train):
            yield


def load_generated(compiled: Compiled, directory: str | Path | None = None) -> Generated:
    """Render `compiled` into `directory` and import it.

    Without a directory the code goes to a new temporary one that the caller owns (rocketc's
    own commands always pass a directory: the run's `code/`, or one they clean up).
    """
    directory = Path(directory or tempfile.mkdtemp(prefix=f"rocketc-{compiled.spec.name}-"))
    write(compiled, directory)
    tag = f"rocketc_generated_{compiled.spec.name}_{next(_counter)}"
    model = _import(f"{tag}_model", directory / "model.py", {})
    # train.py says `from model import ...`: that name means this model module, for it alone.
    train = _import(f"{tag}_train", directory / "train.py", {"model": model})
    return Generated(model, train, directory, compiled)


def _import(name: str, path: Path, siblings: dict[str, ModuleType]) -> ModuleType:
    """Execute `path` as a new module called `name`, resolving imports of `siblings` locally."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if siblings:
        # A module's imports go through the `__import__` of its own builtins: give this module
        # a copy whose `__import__` answers the sibling names, so sys.modules is never touched.
        def import_(target: str, *args, **kwargs):
            if target in siblings:
                return siblings[target]
            return builtins.__import__(target, *args, **kwargs)

        module.__builtins__ = {**vars(builtins), "__import__": import_}
    # Registered only while the module body runs: `@dataclass` resolves the module by name.
    with _registered(module):
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _registered(module: ModuleType) -> Iterator[None]:
    name = module.__name__
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
