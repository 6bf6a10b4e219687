"""Golden files: every specs/<name>.yaml renders byte for byte to generated/<name>/*.py.

A mismatch fails with a unified diff. After a deliberate change to code generation or to a spec,
refresh the committed files with either command and review `git diff generated/`:

    ROCKETC_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/test_golden.py
    for s in specs/*.yaml; do .venv/bin/rocketc compile $s; done

The rendered files must also be deterministic, lint and format clean under the pinned ruff with
the project's own configuration (the rules `ruff check .` applies to generated/ in CI), and import
nothing but torch, the standard library and (train.py) the sibling `model`.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rocketc.backends.codegen import render
from rocketc.compiler import compile_file, compile_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
FILES = ("model.py", "train.py")
UPDATE = os.environ.get("ROCKETC_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    """Spec name -> file name -> text, rendered in memory (nothing written)."""
    return {path.stem: render(compile_file(path)) for path in SPECS}


def test_specs_exist():
    assert len(SPECS) >= 5


@pytest.mark.parametrize("spec", [p.stem for p in SPECS])
def test_generated_files_match(rendered, spec):
    for name in FILES:
        golden = ROOT / "generated" / spec / name
        text = rendered[spec][name]
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
            continue
        assert golden.exists(), f"{golden} is missing; see tests/test_golden.py's docstring"
        committed = golden.read_text(encoding="utf-8")
        if committed != text:
            diff = "".join(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"generated/{spec}/{name} (committed)",
                    tofile=f"generated/{spec}/{name} (rendered now)",
                )
            )
            pytest.fail(
                f"generated/{spec}/{name} is stale; refresh it as this module's "
                f"docstring says.\n{diff}",
                pytrace=False,
            )


def test_no_stray_generated_directories():
    names = {p.stem for p in SPECS}
    stray = {p.name for p in (ROOT / "generated").iterdir() if p.is_dir()} - names
    assert not stray, f"generated/ holds output of no shipped spec: {stray}"


def test_rendering_is_deterministic(rendered):
    """Twice in this process, and once in a process with another hash seed (set order)."""
    for path in SPECS:
        assert render(compile_file(path)) == rendered[path.stem]
    script = (
        "import json, sys; from pathlib import Path; from rocketc.backends.codegen import render; "
        "from rocketc.compiler import compile_file; "
        "print(json.dumps({p: render(compile_file(p)) for p in sys.argv[1:]}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, SPECS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    other = json.loads(proc.stdout)
    assert {Path(p).stem: files for p, files in other.items()} == rendered


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ruff"]


def _assert_ruff_clean(rendered: dict[str, dict[str, str]], tmp_path: Path) -> None:
    for spec, files in rendered.items():
        for name, text in files.items():
            (tmp_path / spec).mkdir(exist_ok=True)
            (tmp_path / spec / name).write_text(text, encoding="utf-8")
    args = ["--config", str(ROOT / "pyproject.toml"), str(tmp_path)]
    check = subprocess.run([*_ruff(), "check", *args], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run([*_ruff(), "format", "--check", *args], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_generated_files_are_ruff_clean(rendered, tmp_path):
    _assert_ruff_clean(rendered, tmp_path)


def test_long_names_stay_within_the_line_length(tmp_path):
    """A spec or file name runs into the docstrings: they wrap, whatever its length."""
    name = "a_spec_whose_name_is_long_enough_to_push_every_docstring_line_it_appears_in_past_100"
    text = (ROOT / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
    assert text.count("name: quickstart\n") == 1
    text = text.replace("name: quickstart\n", f"name: {name}\n")
    _assert_ruff_clean({name: render(compile_text(text, f"{name}.yaml"))}, tmp_path)


def _imported_modules(text: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in generated code"
            modules.add(node.module.split(".")[0])
    return modules


def test_generated_files_import_only_torch_and_stdlib(rendered):
    allowed = {"torch"} | set(sys.stdlib_module_names)
    for spec, files in rendered.items():
        model_imports = _imported_modules(files["model.py"])
        assert "torch" in model_imports
        assert model_imports <= allowed, (spec, model_imports - allowed)
        train_imports = _imported_modules(files["train.py"])
        assert "model" in train_imports
        assert train_imports <= allowed | {"model"}, (spec, train_imports - allowed)


def test_generated_model_defines_the_public_api(rendered):
    want = {
        "RocketNet",
        "LightNet",
        "BoosterNet",
        "compute_loss",
        "example_inputs",
        "example_targets",
        "LOSS_WEIGHTS",
    }
    for spec, files in rendered.items():
        tree = ast.parse(files["model.py"])
        defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        defined |= {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert want <= defined, (spec, want - defined)
        assert ast.get_docstring(tree), spec
