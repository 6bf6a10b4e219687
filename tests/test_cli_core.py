"""The compiler's commands: `rocketc check`, `compile` and `schema`, run through typer's runner.

A user's mistake is `file:line:col: message` lines on stderr and exit 1, never a traceback;
a usage mistake (a missing file) stays click's, exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rocketc.backends.codegen import render
from rocketc.cli import app
from rocketc.compiler import compile_file
from rocketc.compiler.load import load_file

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_ok_prints_sizes(runner, repo_root):
    spec = repo_root / "specs" / "quickstart.yaml"
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 0, result.output
    counts = compile_file(spec).param_counts()
    assert f"{spec}: ok: light net {counts['light_net']:,} parameters" in result.stdout
    assert f"booster {counts['booster_net']:,}" in result.stdout
    assert result.stderr == ""


def test_check_several_specs(runner, spec_paths):
    result = runner.invoke(app, ["check", *map(str, spec_paths)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": ok: ") == len(spec_paths)


@pytest.mark.parametrize(
    "case",
    ["validate/several_errors", "spec/unknown_op", "load/duplicate_key", "infer_shapes/head_width"],
)
def test_check_bad_spec_reports_positions_on_stderr(runner, monkeypatch, case):
    stage, name = case.split("/")
    monkeypatch.chdir(FIXTURES / stage)
    result = runner.invoke(app, ["check", f"{name}.yaml"])
    assert result.exit_code == 1
    expected = (FIXTURES / stage / f"{name}.expected").read_text().splitlines()
    lines = result.stderr.splitlines()
    assert lines[: len(expected)] == expected
    assert lines[len(expected) :] == ([f"{len(expected)} errors"] if len(expected) > 1 else [])
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_reports_good_and_bad_together(runner, repo_root):
    good = repo_root / "specs" / "quickstart.yaml"
    bad = FIXTURES / "validate" / "cycle.yaml"
    result = runner.invoke(app, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert ": ok: " in result.stdout
    assert result.stderr.startswith(f"{bad}:10:5: layers form a cycle")


def test_check_missing_file_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_compile_writes_the_generated_files(runner, repo_root, tmp_path):
    spec = repo_root / "specs" / "quickstart.yaml"
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    files = render(compile_file(spec))
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    for name, text in files.items():
        assert (out / name).read_text() == text
        assert f"wrote {out / name}" in result.stdout


def test_compile_bad_spec_writes_nothing(runner, tmp_path):
    out = tmp_path / "out"
    bad = FIXTURES / "spec" / "reserved_ids.yaml"
    result = runner.invoke(app, ["compile", str(bad), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(f"{bad}:7:12: inputs[0].name: 'F'")
    assert not out.exists()
    assert "Traceback" not in result.output


def test_compile_missing_file_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(app, ["compile", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2


@pytest.fixture(scope="module")
def schema_text() -> str:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_schema_is_json_schema(schema_text):
    schema = json.loads(schema_text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"version", "name", "task", "inputs", "layers", "heads"} <= set(schema["required"])


def test_schema_validates_shipped_specs_and_rejects_unknown_ops(schema_text, spec_paths):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    for path in spec_paths:
        errors = [e.message for e in validator.iter_errors(load_file(path).data)]
        assert not errors, (path.name, errors[:3])
    data = load_file(spec_paths[0]).data
    data["layers"][0]["op"] = "linearr"
    assert not validator.is_valid(data)


def test_schema_to_file(runner, tmp_path, schema_text):
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "-o", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == schema_text


def test_python_dash_m_rocketc_help(repo_root):
    proc = subprocess.run(
        [sys.executable, "-m", "rocketc", "--help"],
        capture_output=True,
        text=True,
        cwd=repo_root,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("check", "compile", "schema"):
        assert command in proc.stdout


def _commands():
    import typer.main

    return typer.main.get_command(app).commands


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_shows_every_default_and_every_help_text(runner, command):
    """rich reads `[default: x]` inside a help string as markup and drops it: defaults that are
    not plain values go in `show_default`, and every help text is printed whole."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    for param in _commands()[command].params:
        help_text = " ".join((getattr(param, "help", None) or "").split())
        assert "[" not in help_text, f"{command} {param.name}: a bracket in help is rich markup"
        assert help_text in text, (command, param.name)
        if isinstance(param.show_default, str):
            assert f"[default: ({param.show_default})]" in text, (command, param.name)
        elif param.default is not None and not isinstance(param.default, bool):
            default = getattr(param.default, "value", param.default)  # an Enum shows its value
            assert f"[default: {default}]" in text, (command, param.name)


def test_a_set_mistake_names_the_set_and_file_mistakes_keep_positions(runner, monkeypatch):
    monkeypatch.chdir(FIXTURES / "spec")
    result = runner.invoke(
        app,
        ["audit", "extra_field.yaml", "--set", "nope.x=1", "--set", "layers.0.out_features=0"],
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "--set layers.0.out_features=0: layers[0].out_features: Input should be greater than or "
        "equal to 1",
        "--set nope.x=1: nope: unknown field",
        *(FIXTURES / "spec" / "extra_field.expected").read_text().splitlines(),
        "3 errors",
    ]
    bad_syntax = runner.invoke(app, ["audit", "extra_field.yaml", "--set", "loss.hint"])
    assert bad_syntax.stderr.startswith("--set loss.hint: expected PATH=VALUE")


def test_a_graph_error_in_a_set_value_names_the_set(runner, repo_root):
    """The passes point at file text; where a --set replaced that text, they name the --set."""
    spec = str(repo_root / "specs" / "quickstart.yaml")
    result = runner.invoke(app, ["audit", spec, "--set", "heads.light=nope"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "--set heads.light=nope: light head 'nope' is not a layer"
    ]
    # The layer that cannot take the new input shape is file text: it keeps its line:col.
    kept = runner.invoke(app, ["audit", spec, "--set", "inputs.0.shape=[1, 8, 8]"])
    assert kept.stderr.startswith(f"{spec}:20:5: layer 'embed' (linear) expects")
