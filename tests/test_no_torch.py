"""`rocketc check` and `rocketc compile` never import torch: they must answer instantly.

Each runs in a fresh interpreter (this test process has long imported torch), through the real
CLI app, and then looks at sys.modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
from rocketc.cli import app

spec, out = sys.argv[1], sys.argv[2]
for args in (["check", spec], ["compile", spec, "-o", out], ["schema"]):
    try:
        app(args, prog_name="rocketc")
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not leaked, leaked[:5]
print("no torch")
"""


def _largest_spec() -> Path:
    """The shipped spec with the most layers (ties broken by size): the most code to render."""
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    return max(specs, key=lambda p: (p.read_text().count("\n  - {id:"), p.stat().st_size))


def test_check_and_compile_do_not_import_torch(tmp_path):
    spec = _largest_spec()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(spec), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("no torch")
    assert (tmp_path / "out" / "model.py").exists()
    assert (tmp_path / "out" / "train.py").exists()
