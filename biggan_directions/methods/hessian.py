"""The discovery algorithm: learn an orthonormal Q that makes G(z + wQ) Hessian-diagonal in w (no files)."""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..foundation.errors import SettingError, UserError
from ..core.directions import DirectionMatrix
from ..core.evaluation import EvalDraws, direction_penalty, trim_mean, trimmed_mean_se
from ..models.generator import truncated_normal
from ..models.pooled import class_pool
from ..runtime import precision
from ..runtime.compiling import compiled
from ..runtime.flops import count_flops
from ..runtime.precision import at_precision, precision_record, resolve_compile, set_tf32
from .config import DiscoverConfig, start_default
from .fixed_eval import FixedEvaluation, images_per_step, planned_evaluations
from .ganspace import ganspace_directions
from .sefa import sefa_available, sefa_directions

class DiscoveryDiverged(UserError):
    """The penalty became NaN or infinite."""


class DiscoveryInterrupted(Exception):
    """Ctrl-C or SIGTERM: the state at the last finished step was kept."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


class Discovery:
    """The state of one discovery: direction matrix, Adam, RNG, step. Step it, evaluate it,
    save and restore it. Works on any generator G with `z_dim` and G(z) (B, z_dim) -> tensor(s).

    Training calls G at the run's precision (and compiled, when asked) through `train_G`; the
    fixed evaluation always calls G itself in fp32, so values compare across precisions.

    Pooled over classes (models.pooled.class_pool: a conditional G(z, classes) with
    `num_classes`, a BigGANGenerator of several classes, or a list of single-class generators;
    `classes` picks the set): each sample draws its class uniformly from the set, from the run's
    RNG, and the fixed evaluation measures every class on the same draws. `classes` is the
    sorted set, or None for a single-class run.
    """

    def __init__(self, G: Callable, config: DiscoverConfig, device: torch.device | str = "cpu",
                 classes: Any = None):
        G, self.classes = class_pool(G, classes)
        self.z_dim = int(G.z_dim)
        self.G, self.config, self.device = G, config.validate(self.z_dim), torch.device(device)
        lo, hi = config.subspace or (0, self.z_dim)
        self.ndirs = config.ndirs or (hi - lo)
        self.rng = torch.Generator().manual_seed(config.seed)  # every training draw comes from here
        self.init = resolve_init(config.init, G, self.ndirs, config.subspace, config.sefa_layers)
        init = (self.init if self.init in ("random", "coords")
                else initial_rows(self.init, G, self.ndirs, config.subspace, config.seed,
                                  config.truncation, self.device, sefa_layers=config.sefa_layers,
                                  layer=config.ganspace_layer))
        self.parametrization = config.parametrization or start_default("parametrization", self.init)
        self.schedule = config.schedule or start_default("schedule", self.init)
        self.matrix = DirectionMatrix(self.ndirs, self.z_dim, init, config.subspace,
                                      generator=self.rng,
                                      parametrization=self.parametrization).to(self.device)
        self.lr = config.lr if config.lr is not None else start_default("lr", self.init)
        self.k = config.k if config.k is not None else start_default("k", self.init)
        self.optimizer = torch.optim.Adam(self.matrix.parameters(), lr=self.lr)
        self.evaluation = FixedEvaluation(G, config, self.ndirs, self.device,
                                          classes=self.classes)
        self.step = 0
        # The best matrix on the fixed evaluation so far (the start included), and how many
        # evaluations since one improved on it by more than the evaluation's spread.
        self.best: dict[str, Any] = {"step": None, "value": math.inf, "q": None}
        self.stale = 0
        self.elapsed = 0.0          # seconds of stepping, carried across resumes
        # refused here when it cannot run on the device; setup() resolves 'auto'
        self.precision = precision.candidate(config.precision, self.device)
        self.compile = resolve_compile(config.compile, self.device)
        self.precision_check: dict[str, Any] | None = None
        self._train_G: Callable | None = None

    # ------------------------------------------------------------------ precision and compile
    def setup(self) -> dict[str, Any]:
        """Resolve the training precision ('auto' -> bf16 only when the fixed evaluation's
        penalty at bf16 is within 1% of fp32, else tf32), set TF32, build the training call
        (compiled when asked). Idempotent; returns what it chose, for the run record."""
        if self._train_G is None:
            q = self.matrix().detach()

            def check(p: str) -> float:       # the fixed evaluation's penalty at fp32 or bf16
                if p == "fp32":
                    return self.evaluate(q)
                return self._evaluate_with(at_precision(self.G, p, self.device), q)

            self.precision, self.precision_check = precision.resolve(self.config.precision,
                                                                     self.device, check)
            set_tf32(self.device, self.precision != "fp32")
            modes_ok = self.config.penalty_mode == "batched" and self.config.chunk_size is None
            self._train_G = compiled(at_precision(self.G, self.precision, self.device),
                                     self.device, self.compile, cuda_graphs=modes_ok)
        return precision_record(self.config.precision, self.precision, self.precision_check,
                                self.compile)

    @property
    def compile_report(self) -> dict[str, Any]:
        """The compiled call's mode and first-call seconds (compilation included), if compiled."""
        G = self._train_G
        return {"compile_mode": getattr(G, "mode", None) if self.compile else "eager",
                "compile_seconds": getattr(G, "compile_seconds", None),
                "compile_warnings": getattr(G, "warnings", [])}

    # ------------------------------------------------------------------ training
    def _draw(self, rng: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n latents (n, z_dim) and their walks w (n, ndirs): one direction, d ~ U[-eta, eta]."""
        cfg = self.config
        z = truncated_normal((n, self.z_dim), cfg.truncation, rng)
        j = torch.randint(0, self.ndirs, (n,), generator=rng)
        d = (torch.rand(n, generator=rng) * 2.0 - 1.0) * cfg.path_size
        w = torch.zeros(n, self.ndirs)
        w[torch.arange(n), j] = d
        return z.to(self.device), w.to(self.device)

    def _draw_classes(self, rng: torch.Generator, n: int) -> torch.Tensor | None:
        """A pooled run's classes for n samples, (n,) drawn uniformly from the set (after the
        latents and walks, so a single-class run's stream is unchanged); None otherwise."""
        if self.classes is None:
            return None
        pick = torch.randint(0, len(self.classes), (n,), generator=rng)
        return torch.tensor(self.classes, dtype=torch.long)[pick].to(self.device)

    def _loss(self) -> torch.Tensor:
        """The loss of one training batch (draws advance the training RNG): the penalty of the
        batch (mean over samples), or the trimmed mean of its per-sample penalties."""
        cfg = self.config
        z, w = self._draw(self.rng, cfg.batch_size)
        labels = self._draw_classes(self.rng, cfg.batch_size)
        mark_step = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
        if self.compile and self.device.type == "cuda" and mark_step is not None:
            mark_step()                      # CUDA graphs: the previous step's outputs are done
        per_output: list[torch.Tensor] = []

        def per_sample(variance: torch.Tensor) -> torch.Tensor:     # (B, ...) -> (B,) kept
            flat = variance.flatten(1)
            per_output.append(flat.amax(1) if cfg.reduction == "max" else flat.mean(1))
            return per_output[-1].sum()

        reduction = cfg.reduction if cfg.loss == "mean" else per_sample
        loss = direction_penalty(self._train_G, self.matrix(), z, w, k=self.k,
                                 epsilon=cfg.epsilon, reduction=reduction, generator=self.rng,
                                 chunk_size=cfg.chunk_size, mode=cfg.penalty_mode,
                                 classes=labels)
        return loss if cfg.loss == "mean" else trim_mean(torch.stack(per_output).sum(0))

    def learning_rate(self, step: int | None = None) -> float:
        """The learning rate of step `step` (default: the next one) under the run's schedule:
        constant, or a linear warmup over `warmup` of the steps then cosine decay to 0."""
        cfg = self.config
        step = self.step if step is None else step
        if self.schedule == "constant":
            return self.lr
        warm = max(1, int(cfg.warmup * cfg.steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))

    def train_step(self) -> float:
        """One optimiser step (over `accumulate` batches); returns the step's loss. Raises
        DiscoveryDiverged on NaN/inf before touching the matrix, so the state stays that of the
        last good step."""
        self.setup()
        self.optimizer.zero_grad(set_to_none=True)
        value = 0.0
        for _ in range(self.config.accumulate):
            loss = self._loss() / self.config.accumulate
            part = float(loss.detach())
            if not math.isfinite(part):
                self.optimizer.zero_grad(set_to_none=True)
                raise DiscoveryDiverged(f"the penalty became {part} at step {self.step + 1}")
            loss.backward()
            value += part
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.step()
        self.step += 1
        return value

    def observe(self, value: float, spread: float) -> bool:
        """Record the fixed evaluation `value` of the current matrix: it becomes the best when
        lower than the best so far; the patience count restarts only for an improvement larger
        than `spread`. Returns whether it is the new best."""
        if value < self.best["value"] - spread:
            self.stale = 0
        elif self.best["step"] is not None:
            self.stale += 1
        if value < self.best["value"]:
            self.best = {"step": self.step, "value": value, "q": self.directions()}
            return True
        return False

    @property
    def planned_evaluations(self) -> int:
        """Evaluations a run plans (fixed_eval.planned_evaluations)."""
        return planned_evaluations(self.config)

    def step_flops(self) -> int:
        """FLOPs of one training step (penalty forward and backward, fp32 eager), counted on a
        copy of the RNG so the run's draws are untouched; the optimiser is not stepped."""
        saved = self.rng.get_state()
        train_G, self._train_G = self._train_G, self.G
        try:
            def step():
                loss = self._loss()
                loss.backward()
            flops = count_flops(step)
        finally:
            self._train_G = train_G
            self.rng.set_state(saved)
            self.optimizer.zero_grad(set_to_none=True)
        return flops

    @property
    def images_per_step(self) -> int:
        return images_per_step(self.config, self.k)

    def directions(self) -> torch.Tensor:
        """The current (ndirs, z_dim) orthonormal matrix, detached, on the CPU."""
        with torch.no_grad():
            return self.matrix().detach().cpu()

    # ------------------------------------------------------------------ fixed evaluation
    # The run's FixedEvaluation (fixed_eval.py, shared with SeFa and GANSpace runs); the
    # matrix defaults to the current one.
    @property
    def eval_per_direction(self) -> int:
        return self.evaluation.per_direction

    @eval_per_direction.setter
    def eval_per_direction(self, value: int) -> None:       # resume: the size the run began with
        self.evaluation.per_direction = value

    @property
    def draws(self) -> EvalDraws:
        """The run's fixed (validation) evaluation draws: the curve and the best matrix."""
        return self.evaluation.draws

    @property
    def test_draws(self) -> EvalDraws:
        """A second, independent draw set that no choice looks at: the kept matrix's report."""
        return self.evaluation.test_draws

    def evaluate(self, q: torch.Tensor | None = None, draws: EvalDraws | None = None,
                 on_chunk: Callable[[int], None] | None = None, *,
                 per_sample: bool = False) -> float | torch.Tensor:
        """Penalty of q (default: the current matrix) on the fixed evaluation draws (default:
        the validation draws), in fp32; per_sample gives the (N,) per-sample penalties."""
        return self.evaluation.evaluate(self.matrix() if q is None else q, draws, on_chunk,
                                        per_sample=per_sample)

    def _evaluate_with(self, G: Callable, q: torch.Tensor) -> float:
        return self.evaluation.evaluate_with(G, q)

    def reference_values(self, draws: EvalDraws | None = None,
                         on_chunk: Callable[[int], None] | None = None,
                         full: bool = True) -> dict[str, Any]:
        """The references of the draws (FixedEvaluation.reference_values)."""
        return self.evaluation.reference_values(draws, on_chunk, full)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = {"format": "biggan-directions-checkpoint", "version": 1, "step": self.step,
                 "elapsed": self.elapsed, "A": self.matrix.A.detach().cpu(),
                 "optimizer": self.optimizer.state_dict(), "rng": self.rng.get_state(),
                 "config": json.dumps(self.config.to_json(), sort_keys=True),
                 "best": json.dumps({"step": self.best["step"], "value": self.best["value"],
                                     "stale": self.stale})}
        if self.best["q"] is not None:
            state["best_q"] = self.best["q"]
        if self.parametrization == "cayley":
            state["Q0"] = self.matrix.Q0.detach().cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.matrix.A.copy_(state["A"].to(self.device))
            if "Q0" in state:
                self.matrix.Q0.copy_(state["Q0"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        if "best" in state:
            best = json.loads(state["best"])
            self.best = {"step": best["step"], "value": float(best["value"]),
                         "q": state.get("best_q")}
            self.stale = int(best["stale"])


def resolve_init(init: str, G: Callable, ndirs: int, subspace: tuple[int, int] | None,
                 sefa_layers: str) -> str:
    """The start a run uses: `init` itself, or for 'auto' 'sefa' when SeFa can read G's first
    layer and the run learns a full basis (no subspace, ndirs = z_dim), else 'random' (the
    published start). Only full bases: SeFa's first rows are its strongest directions, and a
    stronger direction has a larger penalty, so a top-k start would read worse than random
    k-row matrices for a reason that has nothing to do with learning."""
    if init != "auto":
        return init
    full = subspace is None and ndirs == int(G.z_dim)
    return "sefa" if full and sefa_available(G, ndirs, sefa_layers) else "random"


def initial_rows(method: str, G: Callable, ndirs: int, subspace: tuple[int, int] | None,
                 seed: int, truncation: float, device: torch.device, *,
                 sefa_layers: str, layer: str | None = None) -> torch.Tensor:
    """(ndirs, z_dim) starting rows from a closed-form or sampling method ('sefa': the top
    right-singular vectors of the layer that first reads z; 'ganspace': principal directions of
    an early layer); DirectionMatrix orthonormalises them in order."""
    if subspace is not None:
        raise SettingError("init", method, "starts from whole-latent directions; it does not "
                                           "combine with a subspace (use random or coords).")
    if method == "sefa":
        return sefa_directions(G, ndirs, sefa_layers)[0]
    samples = max(2000, 5 * ndirs)
    return ganspace_directions(G, layer, samples=samples, ndirs=ndirs, seed=seed,
                               truncation=truncation, device=device)[0]


# ---------------------------------------------------------------------- Python API
def discover_directions(G: Callable, config: DiscoverConfig | None = None, *,
                        device: torch.device | str | None = None, progress: bool = True,
                        callback: Callable[[int, float], None] | None = None,
                        return_record: bool = False, classes: Any = None,
                        **settings: Any) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Learn directions for any generator and return Q, (ndirs, z_dim), orthonormal rows.

    G:        an object with `z_dim` and a call G(z): (B, z_dim) -> tensor (or list of tensors),
              deterministic (eval mode), already on `device`.
    config:   a DiscoverConfig; keyword `settings` override its fields (steps=200, lr=0.05, ...).
              keep="best" (the default) measures the start and every eval_every steps on the
              run's fixed evaluation (sized as `discover` sizes it) and hands back the best of
              them, the start included: never worse than the start on those draws.
              keep="last" hands back the last step's matrix without evaluating (unless
              patience is set).
    device:   where the direction matrix lives (default: the device of G's first parameter, or
              the CPU).
    callback: called as callback(step, penalty) after every step.
    return_record: also return the run's record (Q, record): best_step, eval_penalty (the
              kept matrix's), last_eval_penalty, eval_standard_error, eval_rounding_floor,
              stop_reason and test_eval (the kept matrix on the independent test draws).
    classes:  pooled over a set of classes (one matrix for all): G a conditional generator
              G(z, classes) with `num_classes` (classes a (B,) index tensor; the set: `classes`,
              else G's own `classes`, else all), or a list of single-class generators.

    No files are written; `run_discover` adds run folders, checkpoints and resume.
    """
    config = DiscoverConfig(**{**asdict(config or DiscoverConfig()), **settings})
    if device is None:
        params = getattr(G[0] if isinstance(G, (list, tuple)) and G else G, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        device = first.device if first is not None else "cpu"
    q, record = train_directions(G, config, device, progress, callback, classes=classes)
    return (q, record) if return_record else q


def patience_spread(standard_error: float | None, rounding: float) -> float:
    """The smallest improvement that counts as learning (patience): larger than both the
    evaluation's measured standard error and its rounding floor (evaluation.rounding_floor),
    so rounding noise never counts, whatever the CPU's kernels."""
    se = standard_error if standard_error is not None and math.isfinite(standard_error) else 0.0
    return max(se, rounding)


def train_directions(G: Callable, config: DiscoverConfig, device: torch.device | str = "cpu",
                     progress: bool = False,
                     callback: Callable[[int, float], None] | None = None,
                     classes: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """The Hessian Penalty method with no files (the Python API): config.steps steps (fewer
    when patience stops it), keeping the best matrix on the fixed evaluation when config.keep
    is 'best'; (Q (ndirs, z_dim), its record: the start the run took and, when it evaluated,
    best_step, the evaluations and the test-set value). `classes`: see Discovery."""
    run = Discovery(G, config, device, classes)
    record: dict[str, Any] = {"init": run.init}
    evaluating = config.keep == "best" or config.patience is not None
    spread, last_eval = 0.0, None
    if evaluating:
        values = run.evaluate(per_sample=True)
        start = trim_mean(values).item()
        record.update(eval_standard_error=trimmed_mean_se(values),
                      eval_rounding_floor=run.evaluation.rounding_floor(start),
                      eval_samples=run.draws.samples)
        spread = patience_spread(record["eval_standard_error"], record["eval_rounding_floor"])
        run.observe(start, 0.0)
        last_eval = start
    with _progress(config.steps, 0, progress, "discover") as bar:
        while run.step < config.steps:
            value = run.train_step()
            bar.update(1)
            bar.set_postfix(penalty=f"{value:.4g}", refresh=False)
            if callback is not None:
                callback(run.step, value)
            if evaluating and (run.step % config.eval_every == 0 or run.step == config.steps):
                last_eval = run.evaluate()
                run.observe(last_eval, spread)
                if config.patience is not None and run.stale >= config.patience:
                    record["stop_reason"] = "patience"
                    break
    record.setdefault("stop_reason", "steps")
    record["step"] = run.step
    if not evaluating:
        return run.directions(), record
    best = config.keep == "best"
    q = run.best["q"] if best else run.directions()
    record.update(best_step=run.best["step"], best_eval_penalty=run.best["value"],
                  last_eval_penalty=last_eval,
                  eval_penalty=run.best["value"] if best else last_eval,
                  test_eval={"matrix": config.keep, "step": run.best["step"] if best else run.step,
                             "value": run.evaluate(q, run.test_draws)})
    return q, record


@contextmanager
def _progress(total: int, initial: int, enabled: bool, desc: str, unit: str = "step",
              leave: bool = True):
    bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit=unit,
               dynamic_ncols=True, leave=leave)
    try:
        yield bar
    finally:
        bar.close()
