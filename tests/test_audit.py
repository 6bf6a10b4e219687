"""The gradient-flow audit: the measured matrix per gradient_block mode, and its exit codes.

The expected matrices are written out here by hand from the paper's rules rather than taken from
`rocketc.train.audit.expected`, so a wrong expectation table cannot pass its own test.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import networkx as nx
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import rocketc.compiler.passes
from rocketc.cli import app
from rocketc.compiler import compile_file, compile_text
from rocketc.train.audit import GROUPS, expected, parameter_groups, run_audit
from rocketc.train.generated import load_generated

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "specs" / "quickstart.yaml"
INTERVAL = ROOT / "specs" / "wrn16_1_interval.yaml"
Y, N = True, False

# term -> (shared, light, booster, adapter) reached, per mode; tied is checked on the interval
# spec. No term but a feature hint with an adapter may reach the adapter group.
MATRICES = {
    "booster": {
        "light": (Y, Y, N, N),
        "booster": (Y, N, Y, N),
        "hint": (Y, Y, N, N),
        "kd": (Y, Y, N, N),
    },
    "shared": {
        "light": (N, Y, N, N),
        "booster": (Y, N, Y, N),
        "hint": (N, Y, N, N),
        "kd": (N, Y, N, N),
    },
    "none": {
        "light": (Y, Y, N, N),
        "booster": (Y, N, Y, N),
        "hint": (Y, Y, Y, N),
        "kd": (Y, Y, Y, N),
    },
}


def with_mode(path: Path, mode: str, kd: float | None = None):
    text = path.read_text(encoding="utf-8").replace(
        "gradient_block: booster", f"gradient_block: {mode}"
    )
    if kd is not None:
        text = text.replace("kd: {weight: 0.0}", f"kd: {{weight: {kd}}}")
    return compile_text(text, str(path))


@cache
def quickstart_audit(mode: str):
    return run_audit(with_mode(QUICKSTART, mode, kd=0.5), batch_size=8, seed=0)


@pytest.mark.parametrize("mode", sorted(MATRICES))
def test_quickstart_matrix_per_mode(mode):
    result = quickstart_audit(mode)
    assert result.gradient_block == mode
    assert result.terms == ["light", "booster", "hint", "kd"]
    # The quickstart has no tied weights and no adapter: those columns have nothing to check.
    want = {
        term: {**dict(zip(("shared", "light", "booster"), row[:3], strict=True)), "tied": None}
        | {"adapter": None}
        for term, row in MATRICES[mode].items()
    }
    assert GROUPS == ("shared", "light", "booster", "tied", "adapter")
    assert result.matrix() == want
    assert result.ok, (result.flagged, result.problems)
    assert result.group_sizes["tied"] == 0


@pytest.mark.parametrize("mode", sorted(MATRICES))
def test_expectation_table(mode):
    compiled = with_mode(QUICKSTART, mode, kd=0.5)
    for term, (shared, light, booster, adapter) in MATRICES[mode].items():
        row = (shared, light, booster, Y, adapter)
        for group, want in zip(("shared", "light", "booster", "tied", "adapter"), row, strict=True):
            assert expected(compiled, term, group) == want, (mode, term, group)


def test_group_sizes_match_the_compiler():
    compiled = compile_file(QUICKSTART)
    counts = compiled.param_counts()
    sizes = quickstart_audit("booster").group_sizes
    assert {k: sizes[k] for k in ("shared", "light", "booster")} == {
        k: counts[k] for k in ("shared", "light", "booster")
    }


@pytest.mark.parametrize("mode", ["booster", "shared"])
def test_interval_tied_weights_are_their_own_group(mode):
    compiled = with_mode(INTERVAL, mode)
    result = run_audit(compiled, batch_size=2, seed=0)
    tied = sum(
        size
        for n in compiled.layers("light")
        for _, size in compiled.graph.nodes[n].get("tie_paths", [])
    )
    assert result.group_sizes["tied"] == tied > 0
    # Every term the light net feeds reaches the tied convs; so does the booster's CE.
    assert all(result.cell(term, "tied").reached for term in result.terms)
    assert result.cell("hint", "booster").reached is False
    assert result.cell("light", "shared").reached is (mode != "shared")
    assert result.ok, (result.flagged, result.problems)


def test_audit_leaves_the_global_random_state_alone():
    before = torch.random.get_rng_state()
    run_audit(compile_file(QUICKSTART), batch_size=4, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())


def _forget_stop_gradients(graph: nx.DiGraph) -> nx.DiGraph:
    nx.set_edge_attributes(graph, False, "stop_gradient")
    return graph


@pytest.fixture
def broken_compiler(monkeypatch):
    """A compiler whose stop-gradient pass does nothing: the bug the audit exists to catch."""
    validate, infer_shapes, _ = rocketc.compiler.passes.PASSES
    monkeypatch.setattr(
        rocketc.compiler.passes, "PASSES", (validate, infer_shapes, _forget_stop_gradients)
    )


def test_a_missing_detach_is_flagged(broken_compiler):
    result = run_audit(compile_file(QUICKSTART), batch_size=8)
    assert [(c.term, c.group) for c in result.flagged] == [("hint", "booster")]
    assert not result.ok


def test_untied_or_unexpected_shared_weights_are_problems(tmp_path):
    compiled = compile_file(INTERVAL)
    net = load_generated(compiled, tmp_path).model.RocketNet()
    net.light.light_g1[0].conv1.weight = nn.Parameter(torch.zeros(16, 16, 3, 3))  # tie undone
    net.light.light_bn.weight = net.booster.booster_bn.weight  # sharing nobody asked for
    problems: list[str] = []
    groups = parameter_groups(compiled, net, problems)
    assert groups["light.light_g1.0.conv2.weight"] == "tied"
    assert groups["light.light_g1.0.conv1.weight"] == "tied"  # still the spec's tie, flagged
    assert problems == [
        "light.light_g1.0.conv1.weight: the spec ties it to booster.booster_g1.0.conv1.weight, "
        "but the generated model gives it its own tensor",
        "light.light_bn.weight: shared between the nets in the generated model, but the spec "
        "ties no such weight",
    ]


def test_cli_audit_ok_exits_0():
    result = CliRunner().invoke(
        app, ["audit", str(QUICKSTART), "--batch-size", "4", "--set", "loss.gradient_block=none"]
    )
    assert result.exit_code == 0, result.output
    assert "gradient_block: none" in result.stdout
    assert "hint" in result.stdout and "ok: each loss term" in result.stdout
    assert "FLAG" not in result.stdout


def test_cli_audit_flags_exit_1(broken_compiler):
    result = CliRunner().invoke(app, ["audit", str(QUICKSTART)])
    assert result.exit_code == 1
    assert "FLAG hint reaches the booster weights" in result.stdout
    assert "gradient-flow audit failed: 1 finding(s)" in result.stderr
    assert "Traceback" not in result.output


def test_cli_viz_audit_prints_the_matrix(tmp_path):
    out = tmp_path / "q.dot"
    result = CliRunner().invoke(app, ["viz", str(QUICKSTART), "-o", str(out), "--audit"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "gradient-flow audit: quickstart" in result.stdout


def test_cli_audit_rejects_a_batch_of_one():
    result = CliRunner().invoke(app, ["audit", str(QUICKSTART), "--batch-size", "1"])
    assert result.exit_code == 2  # a usage error, click's
