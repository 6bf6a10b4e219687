"""best.yaml: what `rocketc tune`'s verdict says to train, as a spec file that explains itself.

The user's own spec text (ruamel round trip: comments and layout kept) with the `--set`
overrides applied, its `loss:` replaced and its header comment carrying the evidence:

- rocket beats light-alone on test (or no verdict was run): the best recipe, spec name
  `<name>_tuned`;
- anything else: the light net alone on its labels, exactly the loss of the verdict's
  light-alone runs (booster and every teaching term at weight 0), spec name
  `<name>_light_alone`.

`best_recipe.yaml` always holds the best recipe (name `<name>_tuned`), its header saying what the
verdict made of it, so `rocketc ablate --recipe` has one path to take whatever the verdict.

The new name gives the file a run directory of its own: `rocketc train best.yaml` writes
`runs/<name>_tuned/`, never into the user's first run, `runs/<name>/`.
"""

from __future__ import annotations

import dataclasses
import io
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from rocketc.compiler.losses import spec_terms
from rocketc.compiler.spec import Spec
from rocketc.experiments.tune.space import Recipe, apply_recipe, schema_default, set_path, written
from rocketc.experiments.tune.study import StudyRun, TuneResult, plural, recipe_of, states
from rocketc.files import write_atomic

TUNED, LIGHT_ALONE = "_tuned", "_light_alone"  # suffixes of the written specs' names


@dataclass(frozen=True)
class _File:
    """One spec file to write: its loss, its name, what it says about itself."""

    path: Path
    name: str  # the spec's new name: its run directory is runs/<name>/
    loss: dict[str, Any]
    title: str  # the header's first sentence
    about_loss: str  # the comment above `loss:`
    notes: tuple[str, ...] = ()  # header lines after the evidence


def light_alone_verdict(result: TuneResult) -> bool:
    """Whether the verdict says to train the light net alone (anything short of a win)."""
    return result.verdict is not None and not result.verdict.beats


def _zeroed(spec: Spec) -> str:
    """What light alone turns off in `spec`: the booster's loss and each term through which
    it teaches (the registry's `teaches`), by the names the diagram and the audit give them."""
    teaching = [t.name for t in spec_terms(spec) if t.kind.teaches]
    return "the booster's loss" + (f" and its teaching ({', '.join(teaching)})" if teaching else "")


def write_best(tuner: StudyRun, result: TuneResult) -> list[Path]:
    """Write best.yaml (what the verdict says to train) and best_recipe.yaml (the search's best
    recipe, whatever the verdict: a path that `rocketc ablate --recipe` can always be given);
    set `result.next_step`."""

    out, best, spec = result.out_dir, result.best, tuner.spec
    if best is None:
        return []
    recipe_path = out / "best_recipe.yaml"
    if light_alone_verdict(result):
        judged = (
            "This recipe did NOT beat light alone on the test split (the verdict above): "
            "best.yaml trains the light net alone. It is kept to compare it again (`rocketc "
            f"ablate SPEC --recipe {recipe_path}`) or to search with a longer budget; the "
            "verdict does not advise training it."
        )
    elif result.verdict is None:
        judged = (
            "Not judged on the test split yet: run the same study again with --verdict-seeds 5 "
            "before training it."
        )
    else:
        judged = "The verdict says to train it: best.yaml is this same recipe."
    recipe = _File(
        recipe_path,
        spec.name + TUNED,
        _recipe_loss(tuner, recipe_of(best)),
        f"the best loss recipe `rocketc tune` searched for {spec.name}",
        f"Loss: the recipe rocketc tune found, trial {best.number} of study "
        f"'{tuner.study_name}': {_evidence(result)} (see the header).",
        (judged,),
    )
    if not light_alone_verdict(result):
        chosen = dataclasses.replace(
            recipe,
            path=out / "best.yaml",
            title=f"the loss recipe `rocketc tune` found for {spec.name}",
            notes=recipe.notes if result.verdict is None else (),
        )
        how = ""
    else:
        chosen = _File(
            out / "best.yaml",
            spec.name + LIGHT_ALONE,
            tuner.alone_compiled.source.data["loss"],
            f"{spec.name} as the light net alone, on its labels: what `rocketc tune`'s "
            "verdict says to train",
            "Loss: the light net alone, on its labels, as rocketc tune's verdict says (see the "
            "header). The booster's loss and every teaching term are at weight 0: the booster "
            "is still built, but nothing trains it and it is not served.",
            (
                f"The loss is labels only, {_zeroed(spec)} at weight 0: exactly the light-alone "
                f"runs of the verdict. The searched recipe, trial {best.number}, is in "
                f"{recipe_path}.",
            ),
        )
        how = "the light net alone; "
    _write(tuner, result, chosen)
    _write(tuner, result, recipe)
    result.next_step = f"{train_command(chosen)}  ({how}run directory runs/{chosen.name}/)"
    return [chosen.path, recipe.path]


def train_command(file: _File) -> str:
    return f"rocketc train {shlex.quote(str(file.path))}"


def _recipe_loss(tuner: StudyRun, recipe: Recipe) -> dict[str, Any]:
    """The spec's loss section with the recipe applied; a default the spec did not spell out
    stays unwritten (no `temperature: 1.0` on every hint)."""
    data = tuner.compiled.source.data
    shown = {
        path: value
        for path, value in recipe.items()
        if written(data, path) or value != schema_default(tuner.spec, path)
    }
    return apply_recipe({"loss": data.get("loss") or {}}, shown)["loss"]


def _evidence(result: TuneResult) -> str:
    """The recipe's numbers in one clause: validation, and the test verdict if there is one."""
    metric, best = result.metric, result.best
    text = (
        f"validation {metric} {best.value:.4f} against {result.baseline['mean']:.4f} for light "
        "alone"
    )
    verdict = result.verdict
    if verdict is None:
        return text + "; not judged on the test split (--verdict-seeds 0)"
    mean, low, high = verdict.interval
    return (
        f"{text}; on test {mean:+.4f} [{low:+.4f}, {high:+.4f}] over {len(verdict.seeds)} "
        "paired seeds"
    )


# --- the file --------------------------------------------------------------------------------
def _write(tuner: StudyRun, result: TuneResult, file: _File) -> None:
    write_atomic(file.path, _header(tuner, result, file) + _body(tuner, file))


def _body(tuner: StudyRun, file: _File) -> str:
    """The spec as the user wrote it, overrides applied, name and loss replaced."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap the user's long flow-style layer lines
    yaml.preserve_quotes = True
    source = Path(tuner.compiled.file) if tuner.compiled.file else None
    if source is not None and source.is_file():
        doc = yaml.load(source.read_text(encoding="utf-8"))
        safe = YAML(typ="safe")
        for assignment in tuner.options.overrides:
            key, _, raw = assignment.partition("=")
            set_path(doc, key.strip().split("."), safe.load(raw) if raw.strip() else "")
    else:  # compiled from text: no comments to keep
        doc = _commented(tuner.compiled.source.data)
    doc["name"] = file.name
    _drop_eol_comment(doc, "name")
    doc.yaml_add_eol_comment(
        f"# was {tuner.spec.name}: a run directory of its own, runs/{file.name}/", "name"
    )
    keys = list(doc)
    doc["loss"] = _commented_loss(file.loss)
    if "loss" not in keys:
        keys.append("loss")
    _drop_eol_comment(doc, "loss")  # it spoke of the section replaced ("rocketc's defaults")
    before = "\n".join(textwrap.wrap(file.about_loss, 94, break_on_hyphens=False))
    doc.yaml_set_comment_before_after_key("loss", before=before)
    following = keys[keys.index("loss") + 1 :]
    if following:
        doc.yaml_set_comment_before_after_key(following[0], before="\n")
    stream = io.StringIO()
    yaml.dump(doc, stream)
    return stream.getvalue()


def _drop_eol_comment(doc: CommentedMap, key: str) -> None:
    """Remove the comment at the end of `key:`'s line (ruamel keeps it in slot 2)."""
    slots = doc.ca.items.get(key)
    if slots is not None and len(slots) > 2:
        slots[2] = None


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list):
        return CommentedSeq([_commented(v) for v in value])
    return value


def _commented_loss(loss: dict[str, Any]) -> CommentedMap:
    """Block mapping for the section, flow style for hint/kd/feature hints, as specs are written."""
    out = _commented(loss)
    for key, value in out.items():
        if isinstance(value, CommentedMap):
            value.fa.set_flow_style()
        elif isinstance(value, CommentedSeq):
            for item in value:
                if isinstance(item, CommentedMap):
                    item.fa.set_flow_style()
        out[key] = value
    return out


def _header(tuner: StudyRun, result: TuneResult, file: _File) -> str:

    best, metric = result.best, result.metric
    lines = [
        f"{file.path.name}: {file.title} (from {tuner.compiled.file}).",
        "",
        f"Evidence: study '{tuner.study_name}' ({states(result.study)}), "
        f"{plural(tuner.epochs, 'epoch')} per run, best validation epoch of each run. "
        f"Trial {best.number}: validation {metric} "
        f"{best.value:.4f} (mean over seeds {tuner.seeds}) against light alone "
        f"{result.baseline['mean']:.4f} with the same seeds.",
    ]
    if result.verdict is not None:
        lines.append(
            f"Verdict on the test split, paired seeds {result.verdict.seeds}: {result.verdict.text}"
        )
    else:
        lines.append("No test verdict was run (--verdict-seeds 0).")
    lines += file.notes
    if tuner.options.overrides:
        lines.append("Applied: " + " ".join(f"--set {o}" for o in tuner.options.overrides) + ".")
    if result.budget is not None and result.budget.short:
        lines.append(result.budget.text[0].upper() + result.budget.text[1:])
    lines += ["", f"Its spec name is {file.name}, so it trains into runs/{file.name}/:"]
    text = "\n".join(_wrap(line, 96) for line in lines)
    return f"{text}\n# Train: {train_command(file)}\n#\n"  # one line, to copy whole


def _wrap(text: str, width: int) -> str:
    """`text` as `# ` comment lines of at most `width` characters (an empty line: `#`)."""
    wrapped = textwrap.wrap(text, width - 2, break_on_hyphens=False) or [""]
    return "\n".join(f"# {w}".rstrip() for w in wrapped)
