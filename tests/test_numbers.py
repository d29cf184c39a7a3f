"""Every number a user reads is the one it claims to be (issue 28): the curve's best step, values
side by side from one evaluation (or in random-spreads), the LPIPS net named, what resume and a
CPU run will do, and verdicts only where the evaluation can tell."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from biggan_directions.cli import cli
from biggan_directions.core.evaluation import (NOISE_LIMIT, per_direction_to_tell, random_spreads,
                                               versus_random)
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import Discovery
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.runs import discover as discover_mod
from biggan_directions.runs.curves import CURVE_KEY
from biggan_directions.runs.discover import run_discover
from biggan_directions.runs.layout import model_label, run_dir_for
from tests.support import TINY_EVAL_ARGS

TINY = ["--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q", *TINY_EVAL_ARGS]


pytestmark = pytest.mark.usefixtures("one_thread")          # conftest


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def small_config(**kw) -> DiscoverConfig:
    base = dict(steps=6, batch_size=2, checkpoint_every=2, eval_every=3, eval_per_direction=1,
                eval_k=2, ndirs=8, eval_references=2)
    return DiscoverConfig(**{**base, **kw})


# ---------------------------------------------------------------------- curve.png's best step
def test_the_final_curve_marks_the_best_step_run_json_records(tmp_path, small_biggan, monkeypatch):
    """Each evaluation is better than the last, so the best is the last step: the final
    curve.png is drawn with that step (its arguments and its PNG text chunk), as run.json says,
    not with the best of the checkpoint before it."""
    def improving(self, q=None, draws=None, on_chunk=None, *, per_sample=False):
        n = (draws or self.draws).samples
        if on_chunk is not None:
            on_chunk(n)
        value = 1.0 / (1 + self.step)                      # lower at every later step
        return torch.full((n,), value, dtype=torch.float64) if per_sample else value

    monkeypatch.setattr(Discovery, "evaluate", improving)
    drawn = []
    original = discover_mod.write_curve
    monkeypatch.setattr(discover_mod, "write_curve",
                        lambda *a, best, **kw: (drawn.append(best), original(*a, best=best, **kw))[1])
    folder = tmp_path / "run"
    G = BigGANGenerator(small_biggan, 207, 1.0)
    run_discover(G, small_config(), folder, meta={"model": "m"}, progress=False)
    record = json.loads((folder / "run.json").read_text())
    assert record["best_step"] == 6
    assert drawn[-1] == (6, pytest.approx(1 / 7))                 # the last drawing's star
    assert [step for step, _ in drawn] == [0, 3, 6]              # each drawn as its best
    marked = json.loads(Image.open(folder / "curve.png").text[CURVE_KEY])
    assert marked["best_step"] == record["best_step"]
    assert marked["best_eval_penalty"] == pytest.approx(record["best_eval_penalty"])


# ---------------------------------------------------------------------- verdicts that can tell
def test_a_verdict_too_coarse_to_tell_says_so_and_names_the_size_that_would():
    ref = {"random": 10.0, "random_std": 0.09}
    # the case: a standard error 0.33 against a spread of 0.09 (3.7 random-spreads)
    verdict = versus_random(10.15, ref, noise=0.33, per_direction=2)
    ratio = 0.33 / 0.09
    need = per_direction_to_tell(2, ratio)
    assert verdict == (f"too coarse to tell (noise {ratio:.1f} random-spreads): "
                       f"--eval-per-direction {need} would tell")
    assert need == math.ceil(2 * (ratio / NOISE_LIMIT) ** 2)     # the error falls as 1/sqrt(n)
    # ... at that size the noise is within the limit
    assert 0.33 * math.sqrt(2 / need) / 0.09 <= NOISE_LIMIT + 1e-9
    # a fine evaluation gives the verdict
    assert versus_random(9.7, ref, noise=0.02) == "below random"
    assert versus_random(10.1, ref, noise=0.02) == "within the random spread"
    assert versus_random(10.3, ref, noise=0.02) == "above random"
    assert versus_random(9.7, ref) == "below random"             # noise unknown: as before
    assert random_spreads(9.82, ref) == pytest.approx(-2.0)


def _coarse_consistent(verdict: str, value: float, reference: dict, noise: float) -> None:
    """The verdict is the one versus_random gives for this value, band and noise."""
    ratio = noise / reference["random_std"]
    assert verdict.startswith("too coarse to tell") == (ratio > NOISE_LIMIT), (verdict, ratio)
    if ratio > NOISE_LIMIT:
        assert f"(noise {ratio:.1f} random-spreads)" in verdict and "--eval-per-direction" in verdict


def test_run_and_test_set_verdicts_weigh_their_own_noise(tmp_path, small_biggan):
    folder = tmp_path / "run"
    G = BigGANGenerator(small_biggan, 207, 1.0)
    run_discover(G, small_config(), folder, meta={"model": "m"}, progress=False)
    record = json.loads((folder / "run.json").read_text())
    _coarse_consistent(record["versus_random"], record["eval_penalty"], record["reference_eval"],
                       record["eval_standard_error"])
    test = record["test_eval"]
    assert test["standard_error"] > 0
    _coarse_consistent(test["versus_random"], test["value"], record["reference_test"],
                       test["standard_error"])
    # a 1-latent-per-direction evaluation of 8 directions is too coarse on this model
    assert record["versus_random"].startswith("too coarse to tell")


@pytest.mark.parametrize("method", ["sefa", "ganspace"])
def test_closed_form_runs_record_their_noise_and_verdict(tmp_path, small_biggan, method):
    folder = tmp_path / method
    G = BigGANGenerator(small_biggan, 207, 1.0)
    cfg = small_config(method=method, samples=200).for_method(method)
    run_discover(G, cfg, folder, meta={"model": "m"}, progress=False, notify=lambda line: None)
    record = json.loads((folder / "run.json").read_text())
    assert record["eval_per_direction"] == 1 and record["eval_samples"] == 8
    _coarse_consistent(record["versus_random"], record["eval_penalty"], record["reference_eval"],
                       record["eval_standard_error"])


# ---------------------------------------------------------------------- batch --methods
def test_batch_methods_are_shown_against_their_own_random_band_never_raw(tmp_path,
                                                                         small_biggan_dir):
    """hessian and sefa runs are evaluated on different draws: the batch line and the gallery
    show each run's distance to the random matrices on its own draws (random-spreads, labelled),
    computed from that run's run.json, and never the two raw penalties side by side."""
    model, out = str(small_biggan_dir), tmp_path / "out"
    r = invoke("batch", "--classes", "1", "--model", model, "--out", str(out),
               "--methods", "hessian,sefa", "--steps", "2", *TINY)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("[1/1]"))
    page = (out / model_label(model) / "batch" / "index.html").read_text()
    table = page.split('<table class="methods">')[1].split("</table>")[0]
    assert "random-spreads" in line and "own draws" in line and "random-spreads" in table
    manifest = json.loads((out / model_label(model) / "batch" / "manifest.jsonl").read_text())
    hessian = run_dir_for(out, model, 1, "goldfish")
    for method, folder in (("hessian", hessian),
                           ("sefa", out / model_label(model) / "sefa" / hessian.name)):
        record = json.loads((folder / "run.json").read_text())
        ref = record["reference_eval"]
        expected = (record["eval_penalty"] - ref["random"]) / ref["random_std"]
        part = manifest["methods"][method]
        assert part["random_spreads"] == pytest.approx(expected, rel=1e-9)
        assert f"{method} {expected:+.1f}" in line
        assert f"{expected:+.1f}" in table
        raw = f"{record['eval_penalty']:.4g}"
        assert raw not in line and raw not in table            # no raw value of its own draws


# ---------------------------------------------------------------------- more steps than asked
def test_batch_skips_a_class_interrupted_past_the_steps_asked(tmp_path, small_biggan_dir,
                                                              monkeypatch):
    """A class interrupted at step 4 of 8, then `batch --steps 2`: it has more steps than asked,
    so it is skipped (kept, not failed), and its card says so in words."""
    import os
    import signal

    model, out = str(small_biggan_dir), tmp_path / "out"
    original = discover_mod.Discovery.train_step

    def train_step_then_sigterm(self):
        value = original(self)
        if self.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return value

    monkeypatch.setattr(discover_mod.Discovery, "train_step", train_step_then_sigterm)
    args = ["batch", "--classes", "1", "--model", model, "--out", str(out), *TINY]
    r = invoke(*args, "--steps", "8")
    assert r.exit_code == 130, r.output
    monkeypatch.setattr(discover_mod.Discovery, "train_step", original)
    folder = run_dir_for(out, model, 1, "goldfish")
    assert json.loads((folder / "run.json").read_text())["step"] == 4
    r = invoke(*args, "--steps", "2")
    assert r.exit_code == 0, r.output
    assert "1 class: 1 finished (1 already complete" in r.output
    batch_folder = out / model_label(model) / "batch"
    entry = json.loads((batch_folder / "manifest.jsonl").read_text())
    assert entry["status"] == "finished" and entry["skipped"] and entry["error"] is None
    assert entry["step"] == 4 and entry["steps"] == 2
    card = (batch_folder / "index.html").read_text().split('id="c1"')[1]
    assert "4 steps (more than the 2 asked: kept)" in card and "4/2" not in card


def test_gallery_card_steps_in_words():
    from biggan_directions.batch.gallery import _steps_fact

    assert _steps_fact({"step": 150, "steps": 30}) == "150 steps (more than the 30 asked: kept)"
    assert _steps_fact({"step": 30, "steps": 30}) == "30 steps"
    assert _steps_fact({"step": 10, "steps": 30}) == "step 10/30"
    # a closed-form main run has no steps: not 'step 0/50000'
    assert _steps_fact({"step": 0, "steps": 50000, "methods": {"sefa": {}}}) == ""


# ---------------------------------------------------------------------- resume says what it does
def _no_long_run(monkeypatch, limit: int = 12):
    """Fail fast instead of running toward the 50,000-step default."""
    original = Discovery.train_step

    def bounded(self):
        if self.step >= limit:
            raise AssertionError(f"the run went past step {limit}")
        return original(self)

    monkeypatch.setattr(Discovery, "train_step", bounded)


def test_resume_of_a_finished_run_without_steps_says_how_to_extend(tmp_path, small_biggan_dir,
                                                                   monkeypatch):
    _no_long_run(monkeypatch)
    args = ["discover", "-c", "1", "--model", str(small_biggan_dir), "--out", str(tmp_path), *TINY]
    r = invoke(*args, "--steps", "3")
    assert r.exit_code == 0, r.output
    folder = run_dir_for(tmp_path, str(small_biggan_dir), 1, "goldfish")
    before = (folder / "run.json").read_text()
    r = invoke(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert "already finished at step 3" in r.output and "--resume --steps N" in r.output
    assert (folder / "run.json").read_text() == before          # nothing ran, nothing changed
    record = json.loads(before)
    assert record["step"] == 3 and record["config"]["steps"] == 3


def test_resume_of_an_interrupted_run_without_steps_keeps_its_plan(tmp_path, small_biggan_dir,
                                                                   monkeypatch):
    import os
    import signal

    original = Discovery.train_step

    def train_step_then_sigterm(self):
        value = original(self)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return value

    monkeypatch.setattr(Discovery, "train_step", train_step_then_sigterm)
    args = ["discover", "-c", "1", "--model", str(small_biggan_dir), "--out", str(tmp_path), *TINY]
    r = invoke(*args, "--steps", "4")
    assert r.exit_code == 130, r.output
    monkeypatch.setattr(Discovery, "train_step", original)
    _no_long_run(monkeypatch)
    r = invoke(*args, "--resume")
    assert r.exit_code == 0, r.output
    record = json.loads((run_dir_for(tmp_path, str(small_biggan_dir), 1, "goldfish")
                         / "run.json").read_text())
    assert record["status"] == "finished" and record["step"] == 4     # its plan, not 50,000
    assert "plan changes" not in r.output


def test_resume_that_changes_the_plan_says_how_the_kept_evaluation_weighs(tmp_path,
                                                                          small_biggan_dir):
    args = ["discover", "-c", "1", "--model", str(small_biggan_dir), "--out", str(tmp_path),
            "--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q", "--eval-k", "2",
            "--eval-references", "2", "--eval-every", "2"]
    r = invoke(*args, "--steps", "2")
    assert r.exit_code == 0, r.output
    folder = run_dir_for(tmp_path, str(small_biggan_dir), 1, "goldfish")
    kept = json.loads((folder / "run.json").read_text())["eval_per_direction"]
    r = invoke(*args, "--steps", "4", "--resume")
    assert r.exit_code == 0, r.output
    lines = [x for x in r.output.splitlines() if "plan changes" in x]
    assert len(lines) == 1, r.output
    line = lines[0]
    assert "from 2 to 4 steps" in line and f"({kept} latents per direction" in line
    # 2 more evaluations (steps 4) + the test set, of 4 x kept samples x (1 + 2 x 2) images,
    # against 2 steps of 1 x (1 + 2k) images x 3 (k: the run's, from its start)
    record = json.loads((folder / "run.json").read_text())
    k = record["k"]
    evals = 2 * 4 * kept * 5
    share = evals / (evals + 2 * (1 + 2 * k) * 3.0)
    assert f"its 2 remaining evaluations will be about {share:.0%} of the remaining work" in line
    assert record["eval_per_direction"] == kept and record["step"] == 4


# ---------------------------------------------------------------------- the subspace text
def test_subspace_text_matches_biggan_deep(small_biggan):
    """In BigGAN-deep every block's conditional batch norm reads the whole [z, embedding]
    vector, so a subspace of z is no coarse/mid/fine split: README and --help say so."""
    z_dim = small_biggan.config.z_dim
    embed = small_biggan.embeddings.weight.shape[0]
    norms = [m for m in small_biggan.modules() if hasattr(m, "scale") and hasattr(m, "offset")]
    assert norms and all(m.scale.weight.shape[1] == z_dim + embed for m in norms)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "coarse subspace variant" not in readme
    assert "in BigGAN-deep a subspace is a set of coordinates" in readme
    help_text = " ".join(invoke("discover", "--help").output.split())
    assert "(coarse)" not in help_text and "in BigGAN-deep every block reads all of z" in help_text


# ---------------------------------------------------------------------- one LPIPS net, named
def test_batch_rescores_a_class_scored_with_another_net_and_names_the_net(tmp_path,
                                                                          small_biggan_dir,
                                                                          monkeypatch):
    from tests.support import write_backbone_checkpoint

    torch_home = tmp_path / "torch"
    for net in ("alex", "squeeze"):
        write_backbone_checkpoint(torch_home / "hub" / "checkpoints", net)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    model, out = str(small_biggan_dir), tmp_path / "out"
    args = ["batch", "--classes", "1,2", "--model", model, "--out", str(out), "--steps", "2", *TINY]
    assert invoke(*args).exit_code == 0
    one = run_dir_for(out, model, 1, "goldfish")
    r = invoke("score", str(one), "--net", "squeeze", "--num-seeds", "2", "--steps", "3",
               "--device", "cpu", "-q", "--compare", "random")
    assert r.exit_code == 0, r.output
    assert "LPIPS squeeze" in r.output.splitlines()[0]            # the run's table
    assert r.output.count("LPIPS squeeze") == 2                  # and the baseline table
    r = invoke(*args, "--score", "--score-seeds", "2")
    assert r.exit_code == 0, r.output
    for index, name in ((1, "goldfish"), (2, "great-white-shark")):
        scores = json.loads((run_dir_for(out, model, index, name) / "scores.json").read_text())
        assert scores["settings"]["net"] == "alex", index            # one net across the batch
    page = (out / model_label(model) / "batch" / "index.html").read_text()
    assert page.count("(LPIPS alex)") == 2 and "squeeze" not in page


# ---------------------------------------------------------------------- the plan, before set-up
def test_the_plan_comes_before_set_up_and_a_cpu_default_run_is_advised_steps(
        tmp_path, small_biggan_dir, monkeypatch):
    from biggan_directions.foundation.errors import UserError

    seen = []

    def load_stops(*args, **kwargs):
        seen.append("load")
        raise UserError("stopped at the model load")

    from biggan_directions.runs import class_runs

    monkeypatch.setattr(class_runs, "load_biggan", load_stops)
    lines = []
    config = DiscoverConfig(batch_size=32)                  # the 50,000-step default
    with pytest.raises(UserError, match="stopped at the model load"):
        class_runs.discover_classes(str(small_biggan_dir), ["1"], config, tmp_path,
                                      device="cpu", progress=True,
                                      notify=lambda line: lines.append((line, list(seen))))
    plan = [(line, before) for line, before in lines if line.startswith("plan:")]
    assert len(plan) == 1 and plan[0][1] == []                  # said before the model loads
    line = plan[0][0]
    # 50,000 steps x 32 x (1 + 2k), k 2 from a SeFa start or 4 from a random one
    assert "to 50,000 steps, batch 32: 160-288 generator images a step" in line
    assert "8 M-14.4 M images per class" in line
    assert "--steps 500" in line and "hours" in line


def test_the_time_estimate_from_the_first_steps(tmp_path, small_biggan):
    lines = []
    G = BigGANGenerator(small_biggan, 207, 1.0)
    run_discover(G, small_config(steps=8, eval_every=4), tmp_path / "run", meta={"model": "m"},
                 progress=True, notify=lines.append)                   # -q: no estimate
    estimates = [x for x in lines if x.startswith("first ")]
    assert len(estimates) == 1, lines
    line = estimates[0]
    # after 3 steps: 5 left, 2 evaluations (step 4, step 8) + the test set
    assert line.startswith("first 3 steps: ") and "the 5 steps left take about" in line
    assert "plus 3 fixed evaluations of" in line
    assert "--steps" not in line                                  # not the default length


# ---------------------------------------------------------------------- closed-form progress
def test_closed_form_run_shows_its_plan_and_bar_before_any_work(tmp_path, narrow_biggan,
                                                               monkeypatch):
    """A sefa run says what it will do and opens its bar (over every evaluated sample) before
    the method runs, and the bar then counts every sample of the result and the references."""
    from contextlib import contextmanager

    from biggan_directions.runs import method_run

    events, counted = [], []
    real_find, real_progress = method_run.find_directions, method_run._progress

    def find(*args, **kwargs):
        events.append("find")
        return real_find(*args, **kwargs)

    @contextmanager
    def progress(total, initial, enabled, desc, **kw):
        events.append(("bar", total))
        with real_progress(total, initial, enabled, desc, **kw) as bar:
            real_update = bar.update
            bar.update = lambda n=1: (counted.append(n), real_update(n))[1]
            yield bar

    monkeypatch.setattr(method_run, "find_directions", find)
    monkeypatch.setattr(method_run, "_progress", progress)
    G = BigGANGenerator(narrow_biggan, 207, 1.0)                   # z_dim 16
    cfg = small_config(method="sefa", ndirs=None, eval_per_direction=2).for_method("sefa")
    run_discover(G, cfg, tmp_path / "sefa", meta={"model": "m"}, progress=True,
                 notify=lambda line: events.append(line))
    assert events[0].startswith("sefa: closed form, then the fixed evaluation: ")
    # the result, 2 random matrices, the identity and the SeFa line, on 16 x 2 samples of
    # 1 + 2 x 2 images
    assert "5 matrices x 32 samples (2 per direction) = 800 generator images" in events[0]
    assert events[1] == ("bar", 5 * 32) and events[2] == "find"
    assert sum(counted) == 5 * 32


# ---------------------------------------------------------------------- view's sliders
def test_view_sliders_carry_each_directions_rank_and_effect_from_score(tmp_path,
                                                                       small_biggan_dir):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from biggan_directions.runs.scores_file import SCORES_FORMAT
    from biggan_directions.view.view import Viewer
    from biggan_directions.view.view_app import create_app
    from tests.support import make_run

    folder = make_run(tmp_path, small_biggan_dir, ndirs=4, seed=0, truncation=0.5,
                      path_size=2.0).parent
    effects = {0: 0.05, 1: 0.31, 2: 0.002, 3: 0.12}
    ranking = [1, 3, 0, 2]
    (folder / "scores.json").write_text(json.dumps({
        "format": SCORES_FORMAT, "ranking": ranking, "settings": {"net": "vgg", "path_size": 3.0},
        "directions": [{"direction": k, "rank": ranking.index(k) + 1, "effect": e,
                        "inactive": e < 0.01} for k, e in effects.items()]}))
    for kwargs, shown in (({}, ranking), ({"dirs": [2, 0]}, [2, 0])):
        client = TestClient(create_app(Viewer(folder, device="cpu", progress=False, **kwargs)))
        info = client.get("/api/info").json()
        assert info["lpips_net"] == "vgg" and info["score_path_size"] == 3.0   # not the run's 2
        assert [d["index"] for d in info["directions"]] == shown
        for d in info["directions"]:          # the rank and effect score gave, even with --dirs
            assert d["rank"] == ranking.index(d["index"]) + 1
            assert d["effect"] == pytest.approx(effects[d["index"]])
            assert d["inactive"] == (effects[d["index"]] < 0.01)
    page = client.get("/").text
    assert '"  effect " + d.effect.toFixed(3)' in page and "info.lpips_net" in page


def test_gallery_card_gives_the_verdict_and_says_when_it_cannot_tell(tmp_path, small_biggan_dir):
    model, out = str(small_biggan_dir), tmp_path / "out"
    r = invoke("batch", "--classes", "1", "--model", model, "--out", str(out), "--steps", "2",
               *TINY)
    assert r.exit_code == 0, r.output
    batch_folder = out / model_label(model) / "batch"
    entry = json.loads((batch_folder / "manifest.jsonl").read_text())
    verdict = entry["methods"]["hessian"]["versus_random"]
    record = json.loads((run_dir_for(out, model, 1, "goldfish") / "run.json").read_text())
    assert verdict == record["versus_random"] and verdict.startswith("too coarse to tell")
    card = (batch_folder / "index.html").read_text().split('id="c1"')[1]
    import html
    assert html.escape(f"({verdict})") in card


# ---------------------------------------------------------------------- found in the search
def test_test_eval_puts_the_kept_matrix_beside_sefa_on_the_test_draws(tmp_path, narrow_biggan):
    """README: test_eval gives the kept matrix's value on the test draws 'beside SeFa's value
    there'; it was always null (the test references skipped SeFa)."""
    from biggan_directions.methods.fixed_eval import FixedEvaluation
    from biggan_directions.methods.sefa import sefa_directions

    G = BigGANGenerator(narrow_biggan, 207, 1.0)
    cfg = small_config(steps=2, eval_every=2, ndirs=None)           # a full basis: SeFa applies
    run_discover(G, cfg, tmp_path / "run", meta={"model": "m"}, progress=False,
                 notify=lambda line: None)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    evaluation = FixedEvaluation(G, cfg, G.z_dim, "cpu", per_direction=record["eval_per_direction"])
    sefa = evaluation.evaluate(sefa_directions(G, G.z_dim)[0], evaluation.test_draws)
    assert record["test_eval"]["sefa"] == pytest.approx(sefa, rel=1e-6)
    assert record["reference_test"]["sefa"] == pytest.approx(sefa, rel=1e-6)


def test_compare_curves_put_a_hessian_curve_on_the_common_scale_only_when_it_is(
        tmp_path, small_biggan_dir, monkeypatch):
    """compare_curves.png draws the references of the common draws; a Hessian run's own curve
    is drawn there only when its evaluations used those draws, else its value on them."""
    from biggan_directions.scoring import compare as compare_mod

    model = str(small_biggan_dir)
    common = ["-c", "207", "--model", model, "--ndirs", "4", "--device", "cpu", "-q",
              "--eval-k", "2", "--eval-references", "2"]
    hessian = ["discover", *common, "--batch-size", "2", "--steps", "4", "--eval-every", "2"]
    assert invoke(*hessian, "--eval-per-direction", "4", "--out", str(tmp_path / "a")).exit_code == 0
    assert invoke(*hessian, "--eval-per-direction", "2", "--out", str(tmp_path / "b")).exit_code == 0
    assert invoke("discover", *common, "--method", "sefa", "--eval-per-direction", "2",
                  "--out", str(tmp_path / "a")).exit_code == 0
    label = model_label(model)
    runs = {"h4": tmp_path / "a" / label / "207-golden-retriever",
            "h2": tmp_path / "b" / label / "207-golden-retriever",
            "sefa": tmp_path / "a" / label / "sefa" / "207-golden-retriever"}
    drawn = {}
    original = compare_mod.write_compare_curves
    monkeypatch.setattr(compare_mod, "write_compare_curves",
                        lambda path, curves, *a, **kw: (drawn.update(curves=curves),
                                                        original(path, curves, *a, **kw))[1])
    # common draws: the first run's settings, 4 latents per direction: h4's own, not h2's
    report = compare_mod.compare_runs([runs["h4"], runs["h2"], runs["sefa"]], model=model,
                                      out=tmp_path / "cmp", progress=False)
    h4, h2, sefa = drawn["curves"]
    assert report.settings["eval_per_direction"] == 4
    assert len(h4["points"]) == 3                                 # steps 0, 2, 4: its own curve
    # ... on the common scale: the kept (best) matrix's value there is the curve's lowest point
    assert min(v for _, v in h4["points"]) == pytest.approx(report.rows[0]["eval_penalty"],
                                                            rel=1e-4)   # log.csv: 5 digits
    assert h2["points"] == [(0, pytest.approx(report.rows[1]["eval_penalty"]))]
    assert "(on the common draws)" in h2["label"]
    assert sefa["points"] == [(0, pytest.approx(report.rows[2]["eval_penalty"]))]
