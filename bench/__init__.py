"""rocketc's benchmarks: every claim rocketc makes, measured side by side and regenerable.

`python -m bench [PART ...] [--quick]` from the repository root. A part is a module here whose
name does not start with `_` and which defines `run(quick: bool) -> dict` (every raw number)
and `render(results: dict) -> str` (its BENCHMARKS.md section); optionally `TITLE`, `ORDER`,
`plot(results, path)` and `targets(results) -> list[dict]`. Nothing else needs an edit to add
one. See `_harness.py` for what the harness adds (machine block, results files, BENCHMARKS.md).
"""
