"""Every long command in a real (pseudo-)terminal: exit 0, no traceback, a progress bar drawn.

CliRunner and pipes switch rich's live display off, so a bar that crashes on its first redraw
passed every other test (issue 19: `rocketc train` died with KeyError 'rate' in a terminal,
the README's first command included). `predict` has its own in test_serving.py.
"""

from __future__ import annotations

import pytest

from tests.helpers.pty_runs import BAR, ROCKETC, plain, run_in_pty

SPEC = "specs/quickstart.yaml"


def _ran(code: int, text: str) -> str:
    assert "Traceback" not in text, plain(text)[-3000:]
    assert code == 0, plain(text)[-3000:]
    assert BAR in text, "no progress bar was drawn:\n" + plain(text)[-3000:]
    return plain(text)


def test_train_draws_its_bar(repo_root, tmp_path):
    argv = [*ROCKETC, "train", SPEC, "--epochs", "2", "-o", tmp_path / "run"]
    text = _ran(*run_in_pty(argv, repo_root, 300))
    assert "epoch   2/2" in text and "epoch 3/2" not in text
    assert (tmp_path / "run" / "light.onnx").exists()


def test_ablate_draws_a_bar_per_run(repo_root, tmp_path):
    argv = [*ROCKETC, "ablate", SPEC, "--epochs", "1", "--seeds", "1", "--variant", "rocket"]
    text = _ran(*run_in_pty([*argv, "-o", tmp_path], repo_root, 300))
    assert "rocket seed 0 epoch 1/1" in text and "light_alone seed 0 epoch 1/1" in text
    assert (tmp_path / "ablation.md").exists()


@pytest.mark.parametrize("verdict_seeds", [2])
def test_tune_draws_its_bar(repo_root, tmp_path, verdict_seeds):
    argv = [*ROCKETC, "tune", SPEC, "--trials", "2", "--seeds", "1", "--epochs", "1"]
    argv += ["--verdict-seeds", str(verdict_seeds), "-o", tmp_path]
    text = _ran(*run_in_pty(argv, repo_root, 400))
    assert "trials" in text
