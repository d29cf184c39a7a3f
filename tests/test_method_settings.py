"""Which method reads which discovery setting: the tags on DiscoverConfig's fields, the CLI
refusing a typed option the chosen --method does not read, --help's [method] markers, the
library's SettingError, method_settings from the tags, the penalty's published constants."""
from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import SettingError
from biggan_directions.foundation.settings import default_of, methods_of
from biggan_directions.methods.config import AUTO_EVAL_SIZE, METHODS, DiscoverConfig, start_default

HESSIAN_ONLY = ("steps", "batch_size", "lr", "parametrization", "schedule", "warmup",
                "accumulate", "loss", "keep", "patience", "k", "init", "subspace",
                "checkpoint_every", "eval_every", "penalty_mode")


def test_every_field_names_the_methods_that_read_it():
    tags = {f.name: methods_of(f) for f in fields(DiscoverConfig)}
    for name, owners in tags.items():
        assert owners is None or (owners and set(owners) <= set(METHODS)), name
    assert {n for n, o in tags.items() if o == ("hessian",)} == set(HESSIAN_ONLY)
    assert tags["samples"] == ("ganspace",)
    assert tags["ganspace_layer"] == ("hessian", "ganspace")       # hessian: --init ganspace
    for shared in ("method", "ndirs", "seed", "truncation", "path_size", "epsilon", "reduction",
                   "layers", "sefa_layers", "eval_per_direction", "eval_k", "eval_references",
                   "precision", "compile", "chunk_size"):
        assert tags[shared] is None, shared
    assert DiscoverConfig.owned_by("ganspace") == ("samples", "ganspace_layer")
    assert DiscoverConfig.owned_by("sefa") == ()
    assert set(DiscoverConfig.owned_by("hessian")) == {*HESSIAN_ONLY, "ganspace_layer"}


def test_the_auto_evaluation_size_reads_exactly_the_hessian_fields_it_is_tagged_with():
    """AUTO_EVAL_SIZE is what fixed_eval.eval_size reads of the hessian-only fields: a sefa run
    with an auto evaluation is sized by them (so it shares a hessian run's draws), by no other."""
    from biggan_directions.methods.fixed_eval import eval_size

    base = DiscoverConfig(method="sefa", steps=10_000, batch_size=8, eval_every=1000)
    other = {"steps": 20_000, "batch_size": 16, "accumulate": 2, "k": 3, "eval_every": 500,
             "lr": 0.5, "warmup": 0.5, "patience": 3, "checkpoint_every": 7, "init": "random",
             "loss": "trimmed", "keep": "last", "penalty_mode": "sequential",
             "parametrization": "qr", "schedule": "constant"}
    sizing = {n for n, v in other.items()
              if eval_size(DiscoverConfig(**{**base.__dict__, n: v}), 128) != eval_size(base, 128)}
    assert sizing == set(AUTO_EVAL_SIZE)
    assert eval_size(base, 128) == 4
    assert base.unread() == () and base.validate() is base           # read: they size it
    fixed = DiscoverConfig(**{**base.__dict__, "eval_per_direction": 4})
    assert fixed.unread() == ("steps", "batch_size", "eval_every")   # given a size: unread


def test_library_refuses_a_setting_the_method_does_not_read():
    with pytest.raises(SettingError) as e:
        DiscoverConfig(method="sefa", steps=5, eval_per_direction=2).validate()
    assert e.value.setting == "steps"
    assert "a setting of method hessian; method sefa does not read it" in str(e.value)
    with pytest.raises(SettingError, match="method hessian does not read it"):
        DiscoverConfig(samples=64).validate()
    with pytest.raises(SettingError, match="^lr 0.1: a setting of method hessian"):
        DiscoverConfig(method="ganspace", lr=0.1).validate()
    DiscoverConfig(method="ganspace", samples=64, ganspace_layer="block1").validate()
    DiscoverConfig(method="sefa", steps=default_of(DiscoverConfig, "steps")).validate()  # default
    # one set of settings for several methods (batch --methods): each keeps what it reads
    both = DiscoverConfig(steps=5, lr=0.1, samples=64, eval_per_direction=2)
    assert both.for_method("sefa") == DiscoverConfig(method="sefa", eval_per_direction=2)
    assert both.for_method("ganspace") == DiscoverConfig(method="ganspace", samples=64,
                                                         eval_per_direction=2)
    assert both.for_method("hessian") == DiscoverConfig(steps=5, lr=0.1, eval_per_direction=2)


def test_method_settings_come_from_the_tags_with_the_recorded_keys():
    from biggan_directions.methods.interface import method_settings

    assert method_settings(DiscoverConfig(method="sefa", sefa_layers="all")) == {"sefa_layers": "all"}
    assert method_settings(DiscoverConfig(method="ganspace", samples=64, ganspace_layer="block1")) \
        == {"layer": "block1", "samples": 64, "seed": 0, "truncation": 1.0}
    assert set(method_settings(DiscoverConfig())) == {"steps", "lr", "batch_size", "init", "seed"}


def test_penalty_constants_have_one_home():
    from biggan_directions.core.penalty import PUBLISHED_EPSILON, PUBLISHED_K, hessian_penalty

    signature = inspect.signature(hessian_penalty).parameters
    assert signature["k"].default == PUBLISHED_K == start_default("k", "sefa") == 2
    assert default_of(DiscoverConfig, "k") is None                 # by start (test_selection)
    assert signature["epsilon"].default == PUBLISHED_EPSILON == default_of(DiscoverConfig, "epsilon")
    assert PUBLISHED_EPSILON == 0.1


# ---------------------------------------------------------------- the command line
def test_help_marks_the_options_a_method_owns():
    text = " ".join(CliRunner().invoke(cli, ["discover", "--help"]).output.split())
    assert "--steps INTEGER [hessian] Optimiser steps" in text
    assert "--samples INTEGER [ganspace] Latents" in text
    assert "--layer NAME [hessian, ganspace]" in text
    assert "--seed INTEGER Seeds every random draw" in text
    assert "An option marked [hessian] (or [ganspace]) is read by that method only" in text
    batch = " ".join(CliRunner().invoke(cli, ["batch", "--help"]).output.split())
    assert "--steps INTEGER [hessian] Optimiser steps" in batch


def discover(model, out, *args):
    return CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(model), "--ndirs", "4",
                                    "--eval-references", "2", "--eval-k", "2", "--out", str(out),
                                    "--device", "cpu", "--threads", "1", "-q", *args])


@pytest.mark.parametrize("args, line", [
    (["--method", "sefa", "--steps", "5", "--eval-per-direction", "2"],
     "Error: --steps is a setting of --method hessian; --method sefa does not read it (drop it)."),
    (["--method", "sefa", "--steps", "5"],
     "Error: --steps is a setting of --method hessian; --method sefa reads it only to size an "
     "auto fixed evaluation (drop it, or give that size with --eval-per-direction N)."),
    (["--method", "ganspace", "--lr", "0.1"],
     "Error: --lr is a setting of --method hessian; --method ganspace does not read it (drop it)."),
    (["--method", "sefa", "--layer", "block1"],
     "Error: --layer is a setting of --method hessian or ganspace; --method sefa does not read it "
     "(drop it)."),
    (["--samples", "64"],
     "Error: --samples is a setting of --method ganspace; --method hessian does not read it "
     "(drop it)."),
])
def test_a_typed_option_the_method_does_not_read_is_refused(tmp_path, args, line):
    """Refused before the model loads or a folder is made: the model path does not exist."""
    result = discover(tmp_path / "no-model", tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists()


def test_batch_refuses_an_option_none_of_its_methods_reads(tmp_path, monkeypatch):
    base = ["batch", "--classes", "207", "--model", str(tmp_path / "no-model"),
            "--out", str(tmp_path / "out"), "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, [*base, "--methods", "sefa,ganspace", "--lr", "0.1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --lr is a setting of --method hessian; none of --methods sefa,ganspace reads it "
        "(drop it)."]
    assert not (tmp_path / "out").exists()
    # an option one of --methods reads passes the CLI, and each method's run gets what it reads
    from biggan_directions.cli import batch as batch_cli

    handed = {}

    def run_batch(model, classes, config, out, **kw):      # what the CLI hands the library
        handed.update(config=config, methods=kw["methods"])
        raise SystemExit(0)
    monkeypatch.setattr(batch_cli, "run_batch", run_batch)
    result = CliRunner().invoke(cli, [*base, "--methods", "hessian,sefa,ganspace",
                                      "--samples", "64", "--lr", "0.1"])
    assert result.exit_code == 0, result.output
    assert handed["methods"] == ("hessian", "sefa", "ganspace")
    assert handed["config"].for_method("sefa") == DiscoverConfig(method="sefa")


def test_sefa_with_shared_options_and_defaults_runs(tmp_path, small_biggan_dir):
    result = discover(small_biggan_dir, tmp_path / "out", "--method", "sefa", "--seed", "3",
                      "--path-size", "4", "--eval-per-direction", "2")
    assert result.exit_code == 0, result.output
    assert "sefa finished" in result.output
