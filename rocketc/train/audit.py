"""The gradient-flow audit: which weights each loss term really trains, measured with autograd.

The spec's `gradient_block` promises where gradients stop (the paper's gradient block keeps the
hint from dragging the booster toward the light net). The compiler keeps that promise by
emitting `.detach()` on the edges the `insert_stop_gradients` pass marks, and this audit checks
the promise end to end, on the generated model itself rather than on the graph: it imports the
code `rocketc compile` writes, runs one training-mode forward pass on random inputs, and, for
each loss term separately, asks autograd for the gradient of that term alone with respect to
every parameter. Parameters are grouped as shared / light / booster / tied (light layers reusing
booster weights, which `param_roles()` reports as shared) / adapter (the feature hints'
training-only adapters); a group "receives" the term when the L2 norm of its gradient is above
zero. Summing over a whole group makes rare exact zeros (a dead ReLU unit) harmless. The terms,
their names and what each is expected to reach come from the loss-term registry
(`rocketc.compiler.losses`); any cell that contradicts the expectation is flagged.

torch is imported lazily, inside `run_audit`, like everywhere outside the generated code.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field

from rocketc.compiler import Compiled
from rocketc.compiler.losses import GROUPS, graph_terms
from rocketc.errors import Diagnostic, TrainError

__all__ = [
    "GROUPS",
    "AuditResult",
    "Cell",
    "audit_error",
    "expected",
    "explain",
    "run_audit",
    "run_ddp_audit",
]


def expected(compiled: Compiled, term: str, group: str) -> bool:
    """Whether loss term `term` should update parameter `group` under the spec's gradient_block.

    Each term's rule lives with the term, in the loss registry (`LossKind.reaches`).
    """
    for t in graph_terms(compiled.graph):
        if t.name == term:
            return t.kind.reaches(t, compiled.spec.loss.gradient_block, group, compiled.graph)
    raise KeyError(f"{compiled.spec.name} has no loss term {term!r}")


@dataclass(frozen=True)
class Cell:
    """One (loss term, parameter group) measurement."""

    term: str
    group: str
    norm: float  # L2 norm of d(term)/d(params of group); 0.0 when no path reaches the group
    expected: bool | None  # None: the group has no parameters, so there is nothing to check

    @property
    def reached(self) -> bool:
        return self.norm > 0.0 or math.isnan(self.norm)

    @property
    def flagged(self) -> bool:
        return self.expected is not None and self.reached != self.expected


@dataclass
class AuditResult:
    """The loss term x parameter group matrix of one spec, and what contradicts the spec."""

    name: str
    file: str
    gradient_block: str
    batch_size: int
    seed: int
    terms: list[str]  # the loss terms' names, as in LOSS_WEIGHTS
    group_sizes: dict[str, int]  # parameter elements per group
    cells: dict[tuple[str, str], Cell]
    # Disagreements between the graph and the generated model found on the way (a tie that is
    # not a shared tensor, parameter counts that differ, a non-finite gradient).
    problems: list[str] = field(default_factory=list)

    def cell(self, term: str, group: str) -> Cell:
        return self.cells[term, group]

    @property
    def flagged(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.flagged]

    @property
    def ok(self) -> bool:
        return not self.flagged and not self.problems

    def matrix(self) -> dict[str, dict[str, bool | None]]:
        """term -> group -> reached (None for empty groups): the shape tests compare against."""
        return {
            t: {g: (self.cells[t, g].reached if self.group_sizes[g] else None) for g in GROUPS}
            for t in self.terms
        }


def run_audit(compiled: Compiled, batch_size: int = 8, seed: int = 0) -> AuditResult:
    """Measure the gradient of every loss term on every parameter group of the generated model.

    One forward pass in train mode (dropout and BatchNorm as in training) on the generated
    `example_inputs`/`example_targets`, under a fixed seed and without disturbing the caller's
    random state. `torch.autograd.grad` per term gives each term its own fresh backward pass:
    no gradient accumulates between terms, and an unreached parameter comes back as None.
    """
    import torch

    from rocketc.train.generated import load_generated

    with tempfile.TemporaryDirectory(prefix="rocketc-audit-") as directory:
        model = load_generated(compiled, directory).model  # imported: the files can go
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = model.RocketNet().train()
        inputs = model.example_inputs(batch_size)
        target = model.example_targets(batch_size)
        # (light_logits, booster_logits) or, with feature hints, (..., features): compute_loss
        # takes them in that order, then the target.
        losses = model.compute_loss(*net(*inputs), target)

    params = dict(net.named_parameters())  # a tied tensor appears once, under its light name
    problems: list[str] = []
    groups = parameter_groups(compiled, net, problems)
    sizes = {g: sum(p.numel() for n, p in params.items() if groups[n] == g) for g in GROUPS}
    _check_counts(compiled, sizes, problems)

    terms = [t.name for t in graph_terms(compiled.graph)]
    missing = [t for t in terms if t not in losses]
    if missing:
        problems.append(f"the generated compute_loss gives no {', '.join(missing)} term")
        terms = [t for t in terms if t in losses]
    names = list(params)
    mode = compiled.spec.loss.gradient_block
    cells = {}
    for term in terms:
        grads = torch.autograd.grad(
            losses[term], [params[n] for n in names], retain_graph=True, allow_unused=True
        )
        squares = dict.fromkeys(GROUPS, 0.0)
        for name, grad in zip(names, grads, strict=True):
            if grad is not None:
                squares[groups[name]] += float(grad.detach().double().pow(2).sum())
        for group in GROUPS:
            norm = math.sqrt(squares[group])
            if not math.isfinite(norm):
                problems.append(f"{term} gives a non-finite gradient on the {group} weights")
            cells[term, group] = Cell(
                term, group, norm, expected(compiled, term, group) if sizes[group] else None
            )
    return AuditResult(
        compiled.spec.name, compiled.file, mode, batch_size, seed, terms, sizes, cells, problems
    )


def run_ddp_audit(
    compiled: Compiled, gen, world, find_unused: bool, batch_size: int = 8, seed: int = 0
) -> AuditResult:
    """`run_audit` through DistributedDataParallel's all-reduce, on every rank of `world`.

    Like `rocketc audit`, one loss term at a time and per parameter group; but each term is a
    real step of the DDP set-up training uses (forward, then `backward()`), each rank on its own
    random batch, and the gradients read are the averaged ones DDP leaves in `.grad`. The term
    is backpropagated together with zero times every output, so each weight the outputs reach
    takes part in the all-reduce (a weight the term does not reach gets exactly zero), as in a
    training step. A group is reached when its gradient norm is above zero; the cells are
    checked against the loss registry like the one-process audit's.
    """
    import torch

    from rocketc.train.distributed import wrap

    device = world.device()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = gen.model.RocketNet().train().to(device)
        torch.manual_seed(seed + 1 + world.rank)
        inputs = [t.to(device) for t in gen.model.example_inputs(batch_size)]
        target = gen.model.example_targets(batch_size).to(device)
        present = gen.model.compute_loss(*net(*inputs), target)
        terms = [t.name for t in graph_terms(compiled.graph) if t.name in present]
        problems: list[str] = []
        groups = parameter_groups(compiled, net, problems)
        params = dict(net.named_parameters())
        sizes = {g: sum(p.numel() for n, p in params.items() if groups[n] == g) for g in GROUPS}
        ddp = wrap(net, world, find_unused)
        cells = {}
        for term in terms:
            net.zero_grad(set_to_none=True)
            outputs = ddp(*inputs)
            losses = gen.model.compute_loss(*outputs, target)
            (losses[term] + sum(0.0 * t.float().sum() for t in _output_tensors(outputs))).backward()
            squares = dict.fromkeys(GROUPS, 0.0)
            for name, p in params.items():
                if p.grad is not None:
                    squares[groups[name]] += float(p.grad.detach().double().pow(2).sum())
            for group in GROUPS:
                want = expected(compiled, term, group) if sizes[group] else None
                cells[term, group] = Cell(term, group, math.sqrt(squares[group]), want)
        net.zero_grad(set_to_none=True)
    mode = compiled.spec.loss.gradient_block
    return AuditResult(
        compiled.spec.name, compiled.file, mode, batch_size, seed, terms, sizes, cells, problems
    )


def _output_tensors(value):
    """The tensors in a model's outputs (tuples, lists and dicts of them)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _output_tensors(v)]
    return []


def parameter_groups(compiled: Compiled, net, problems: list[str]) -> dict[str, str]:
    """Parameter name -> group: the generated `param_roles()`, with the spec's ties split out.

    The ties come from the graph (`tie_paths` of each light layer with `tie`) and are checked by
    identity on the model: a tie the generated code fails to make, or sharing the spec never
    asked for, is reported rather than silently counted in some group.
    """
    roles = net.param_roles()
    tied: set[int] = set()
    for n in compiled.layers("light"):
        target = compiled.graph.nodes[n]["layer"].tie
        for path, _ in compiled.graph.nodes[n].get("tie_paths", []):
            # "[0].conv1.weight" (a Python attribute path) -> "0.conv1.weight" (a parameter name)
            attr = path.replace("[", "").replace("]", "")
            light, booster = f"light.{n}.{attr}", f"booster.{target}.{attr}"
            try:
                light_param, booster_param = net.get_parameter(light), net.get_parameter(booster)
            except AttributeError:
                problems.append(
                    f"{light}: the spec ties it to {booster}, but the generated "
                    "model has no such parameter"
                )
                continue
            if light_param is not booster_param:
                problems.append(
                    f"{light}: the spec ties it to {booster}, but the generated "
                    "model gives it its own tensor"
                )
            tied.add(id(light_param))
    groups = {}
    for name, param in net.named_parameters():
        if id(param) in tied:
            groups[name] = "tied"
            continue
        groups[name] = roles[name]
        if roles[name] == "shared" and not name.startswith("shared."):
            problems.append(
                f"{name}: shared between the nets in the generated model, but the "
                "spec ties no such weight"
            )
    return groups


def _check_counts(compiled: Compiled, sizes: dict[str, int], problems: list[str]) -> None:
    """The model's parameter counts per role must be the compiler's (`Compiled.param_counts`)."""
    counts = compiled.param_counts()
    model = {
        "shared": sizes["shared"] + sizes["tied"],
        "light": sizes["light"],
        "booster": sizes["booster"],
        "adapter": sizes["adapter"],
    }
    for role, size in model.items():
        if size != counts[role]:
            problems.append(
                f"the generated model has {size:,} {role} parameters but the "
                f"compiler counts {counts[role]:,}"
            )


def audit_error(result: AuditResult) -> TrainError:
    """The audit's findings as one error (for `rocketc train`, which must not start on them)."""
    where = result.file
    messages = [f"gradient-flow audit: {explain(c, result.gradient_block)}" for c in result.flagged]
    messages += [f"gradient-flow audit: {p}" for p in result.problems]
    return TrainError([Diagnostic(m, where) for m in messages])


def explain(cell: Cell, mode: str) -> str:
    """One sentence on a flagged cell, for people reading the audit."""
    term = cell.term
    if cell.reached:
        return (
            f"{term} reaches the {cell.group} weights (gradient norm {cell.norm:.2e}), "
            f"which gradient_block: {mode} forbids"
        )
    return f"{term} does not reach the {cell.group} weights, which gradient_block: {mode} expects"
