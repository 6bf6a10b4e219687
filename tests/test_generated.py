"""Importing generated code leaves `sys.modules` as it found it, and the code still works."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import types
import typing

import pytest
import torch

from rocketc.compiler import compile_file, embedded_spec
from rocketc.train.generated import load_generated

QUICKSTART = embedded_spec("quickstart")


@pytest.fixture(scope="module")
def compiled():
    return compile_file(QUICKSTART, [])


def test_loading_neither_leaks_nor_clobbers_sys_modules(compiled, tmp_path, monkeypatch):
    users_model = types.ModuleType("model")  # a user's own `model` module must stay in place
    monkeypatch.setitem(sys.modules, "model", users_model)
    load_generated(compiled, tmp_path / "warm")  # first use imports rocketc's own helpers
    before = dict(sys.modules)
    first = load_generated(compiled, tmp_path / "a")
    second = load_generated(compiled, tmp_path / "b")
    assert sys.modules == before
    assert sys.modules["model"] is users_model
    # train.py's `from model import ...` got its own model.py, not the user's or the other's.
    assert first.train.RocketNet is first.model.RocketNet
    assert second.train.RocketNet is second.model.RocketNet
    assert first.model.RocketNet is not second.model.RocketNet


def test_generated_dataclasses_copies_and_pickles_work(compiled, tmp_path):
    gen = load_generated(compiled, tmp_path)
    settings = gen.train.Settings()
    assert dataclasses.replace(settings, epochs=2).epochs == 2
    assert typing.get_type_hints(gen.train.Settings)["epochs"] is int
    model = gen.model.RocketNet()
    twin = copy.deepcopy(model)
    x = gen.model.example_inputs(4)
    model.eval(), twin.eval()
    torch.testing.assert_close(model(*x), twin(*x))
    with gen.importable():
        assert pickle.loads(pickle.dumps(settings)) == settings
    assert gen.train.__name__ not in sys.modules
    with pytest.raises((pickle.PicklingError, AttributeError, ModuleNotFoundError)):
        pickle.dumps(settings)  # outside the block the module is not findable by name


@pytest.mark.parametrize("name", ["quickstart", "ctr_synthetic"])
def test_train_py_runs_on_its_own_and_validates_each_epoch(repo_root, tmp_path, name):
    """`python train.py` beside model.py, nothing of rocketc imported: the loop reads top to
    bottom (settings, data, model, optimizer, epochs) and scores a validation split per epoch."""
    from rocketc.backends.codegen import write

    write(compile_file(repo_root / "specs" / f"{name}.yaml"), tmp_path)
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1: train loss " in done.stdout and "val accuracy {'light': " in done.stdout
