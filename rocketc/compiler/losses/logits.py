"""The terms on the nets' logits: each net's label loss, the paper's hint and online KD."""

from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from rocketc.compiler.losses.base import (
    LossKind,
    Read,
    Side,
    Term,
    Tunable,
    loss_term,
    warmup_text,
    when_on,
)
from rocketc.compiler.spec import Spec


# --- the label losses --------------------------------------------------------------------------
def head_read(spec: Spec, side: Side, teacher: bool = False) -> Read:
    """What a term reads of one head: its logits (the booster's as a teacher, when `teacher`)."""
    return Read(side, getattr(spec.heads, side), "logits", teacher, ("heads", side))


def _label_loss(logits: str, spec: Spec) -> str:
    if spec.task == "multiclass":
        return f"F.cross_entropy({logits}, target)"
    return f"F.binary_cross_entropy_with_logits({logits}.squeeze(1), target)"


def _label_loss_per_example(logits: str, spec: Spec) -> str:
    if spec.task == "multiclass":
        return f'F.cross_entropy({logits}, target, reduction="none")'
    return f'F.binary_cross_entropy_with_logits({logits}.squeeze(1), target, reduction="none")'


def _ce(spec: Spec) -> str:
    return "cross-entropy" if spec.task == "multiclass" else "binary cross-entropy"


@loss_term
class LightLabels(LossKind):
    """The light net's own label loss (cross-entropy, or BCE for a binary task)."""

    name = "light"
    column = "light"

    def terms(self, spec: Spec) -> list[Term]:
        w = spec.loss.light
        reads = (head_read(spec, "light"),)
        return [Term(self.name, self, w, 0, ("loss", "light"), reads)] if w else []

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss(names["light"], spec)

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss_per_example(names["light"], spec)

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"{_ce(spec)}, light logits"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        # What the light net runs, and the shared layers unless `shared` detaches them for it.
        if group == "shared":
            return mode != "shared"
        return group in ("light", "tied")


@loss_term
class BoosterLabels(LossKind):
    """The booster's own label loss; it trains the booster, the shared and the tied weights."""

    name = "booster"
    column = "booster"

    def terms(self, spec: Spec) -> list[Term]:
        w = spec.loss.booster
        path = ("loss", "booster")
        return [Term(self.name, self, w, 0, path, (head_read(spec, "booster"),))] if w else []

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss(names["booster"], spec)

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss_per_example(names["booster"], spec)

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"{_ce(spec)}, booster logits"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return group in ("shared", "booster", "tied")


# --- the booster teaching the light net through the logits ------------------------------------
def _teaching_reaches(mode: str, group: str) -> bool:
    """A term reading the light logits and the booster's as a teacher.

    It trains what the light net runs (the tied weights too); it reaches booster-only weights
    only without a gradient block, and the shared layers unless `shared` detaches them.
    """
    if group == "booster":
        return mode == "none"
    if group == "shared":
        return mode != "shared"
    return group in ("light", "tied")


@loss_term
class Hint(LossKind):
    """The paper's hint: squared error between the light and the booster logits (or probs)."""

    name = "hint"
    column = "both"
    teaches = True
    off: ClassVar[dict[str, Any]] = {"loss.hint.weight": 0.0}

    def terms(self, spec: Spec) -> list[Term]:
        h = spec.loss.hint
        if not h.weight:
            return []
        reads = (head_read(spec, "light"), head_read(spec, "booster", teacher=True))
        return [Term(self.name, self, h.weight, h.warmup_epochs, ("loss", "hint"), reads, h)]

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        student, teacher = self._compared(term, spec, names)
        if term.config.reduction == "mean":
            return f"F.mse_loss({student}, {teacher})"
        return f"({student} - {teacher}).pow(2).sum(dim=1).mean()"

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        student, teacher = self._compared(term, spec, names)
        over_classes = "mean" if term.config.reduction == "mean" else "sum"
        return f"({student} - {teacher}).pow(2).{over_classes}(dim=1)"

    def _compared(self, term: Term, spec: Spec, names: dict[Side, str]) -> tuple[str, str]:
        """The two sides the hint compares: logits or probabilities, z-scored or not."""
        h = term.config
        student, teacher = names["light"], names["booster"]
        if h.normalize == "zscore":
            student, teacher = f"zscore({student})", f"zscore({teacher})"
        if h.on == "probs":
            scale = "" if h.temperature == 1.0 else " / HINT_TEMPERATURE"
            if spec.task == "multiclass":
                student = f"F.softmax({student}{scale}, dim=1)"
                teacher = f"F.softmax({teacher}{scale}, dim=1)"
            else:
                student, teacher = (
                    f"torch.sigmoid({student}{scale})",
                    f"torch.sigmoid({teacher}{scale})",
                )
        return student, teacher

    def tunables(self, spec: Spec, epochs: int) -> list[Tunable]:
        weight = "loss.hint.weight"
        dims = [
            Tunable(weight, "float", 0.01, 10.0, log=True, zero=True),
            Tunable("loss.hint.on", "choice", choices=("logits", "probs"), when=when_on(weight)),
        ]
        if spec.task == "multiclass":  # z-scoring one logit gives 0
            choices = ("none", "zscore")
            dims.append(
                Tunable("loss.hint.normalize", "choice", choices=choices, when=_on("logits"))
            )
        dims.append(
            Tunable(
                "loss.hint.temperature",
                "float",
                1.0,
                8.0,
                log=True,
                when=_on("probs"),
                unset_when=lambda get: get("loss.hint.on") != "probs",
            )
        )
        if epochs // 2 >= 1:
            dims.append(
                Tunable("loss.hint.warmup_epochs", "int", 0, epochs // 2, when=when_on(weight))
            )
        return dims

    def constants(self, term: Term) -> dict[str, tuple[float, str]]:
        t = term.config.temperature
        why = "the hint compares probabilities softened at this temperature"
        return {} if t == 1.0 else {"HINT_TEMPERATURE": (t, why)}

    def helpers(self, term: Term) -> tuple[str, ...]:
        return ("zscore",) if term.config.normalize == "zscore" else ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        h = term.config
        what = h.on if h.temperature == 1.0 else f"{h.on} at T = {h.temperature:g}"
        if h.normalize == "zscore":
            what = f"z-scored {what}"
        return f"MSE of {what} ({h.reduction}){warmup_text(term)}"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return _teaching_reaches(mode, group)


@loss_term
class KD(LossKind):
    """Online knowledge distillation: KL at temperature T (x T^2) to the booster's outputs."""

    name = "kd"
    column = "both"
    teaches = True
    off: ClassVar[dict[str, Any]] = {"loss.kd.weight": 0.0}

    def terms(self, spec: Spec) -> list[Term]:
        kd = spec.loss.kd
        if not kd.weight:
            return []
        reads = (head_read(spec, "light"), head_read(spec, "booster", teacher=True))
        return [Term(self.name, self, kd.weight, kd.warmup_epochs, ("loss", "kd"), reads, kd)]

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        t = "KD_TEMPERATURE"
        student, teacher = names["light"], names["booster"]
        if spec.task == "multiclass":
            return (
                f"F.kl_div(F.log_softmax({student} / {t}, dim=1), "
                f'F.softmax({teacher} / {t}, dim=1), reduction="batchmean") * {t}**2'
            )
        return (
            f"F.binary_cross_entropy_with_logits({student} / {t}, "
            f"torch.sigmoid({teacher} / {t})) * {t}**2"
        )

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        t = "KD_TEMPERATURE"
        student, teacher = names["light"], names["booster"]
        if spec.task == "multiclass":
            return (
                f"F.kl_div(F.log_softmax({student} / {t}, dim=1), "
                f'F.softmax({teacher} / {t}, dim=1), reduction="none").sum(dim=1) * {t}**2'
            )
        return (
            f"F.binary_cross_entropy_with_logits({student} / {t}, "
            f'torch.sigmoid({teacher} / {t}), reduction="none").squeeze(1) * {t}**2'
        )

    def tunables(self, spec: Spec, epochs: int) -> list[Tunable]:
        weight = "loss.kd.weight"
        dims = [
            Tunable(weight, "float", 0.01, 10.0, log=True, zero=True),
            Tunable("loss.kd.temperature", "float", 1.0, 8.0, when=when_on(weight)),
        ]
        if epochs // 2 >= 1:
            dims.append(
                Tunable("loss.kd.warmup_epochs", "int", 0, epochs // 2, when=when_on(weight))
            )
        return dims

    def constants(self, term: Term) -> dict[str, tuple[float, str]]:
        why = "distillation temperature; the term is scaled by its square (Hinton et al.)"
        return {"KD_TEMPERATURE": (term.config.temperature, why)}

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"KL at T = {term.config.temperature:g}{warmup_text(term)}"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return _teaching_reaches(mode, group)


def _on(value: str):
    """Searched only while the hint is on and compares `value` (logits or probs)."""
    return lambda get: bool(get("loss.hint.weight")) and get("loss.hint.on") == value
