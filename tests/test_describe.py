"""describe: the measures and labels of directions, on a generator with planted factors (tests.support.PlantedScene)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from biggan_directions import describe_directions
from biggan_directions.core.directions import random_orthonormal
from biggan_directions.describe.config import DescribeConfig
from biggan_directions.describe.describe import Describer
from biggan_directions.describe.labels import HUES, LABELS, check_label, hue_name
from biggan_directions.describe.measures import (flow_frames, object_mask, seed_object,
                                                 shrink, to_lab)
from biggan_directions.foundation.errors import SettingError
from tests.support import PLANTED, PLANTED_EMPTY, PLANTED_PATH, PlantedScene

SEEDS = 8


@pytest.fixture(scope="module")
def planted():
    """The descriptions of the 12 coordinate axes of the planted scene."""
    return describe_directions(PlantedScene(), torch.eye(12), path_size=PLANTED_PATH, seeds=SEEDS)


@pytest.mark.parametrize("axis,label,measure,amount", PLANTED)
def test_every_planted_axis_gets_its_label_and_its_amount(planted, axis, label, measure, amount):
    d = planted[axis]
    assert d["label"] == label, (d["label"], d["shares"])
    assert d["label_confidence"] > 0.6
    if amount is not None:
        got = d["measures"][measure]
        if measure.endswith("_ratio"):           # a ratio: its log within 20%, same sign
            got, amount = math.log(got), math.log(amount)
        assert got * amount > 0 and abs(got - amount) <= 0.2 * abs(amount), (measure, got, amount)
    agreement = d["agreement"]
    if measure in agreement:
        assert agreement[measure] == pytest.approx(1.0)


def test_the_background_axis_changes_outside_the_object(planted):
    assert planted[8]["measures"]["background_share"] > 0.9
    for axis in (0, 3, 4, 7):                   # the object's own changes stay mostly inside it
        assert planted[axis]["measures"]["background_share"] < 0.4


def test_the_colour_axis_is_named_yellow_and_the_geometry_needs_no_colour(planted):
    m = planted[7]["measures"]
    assert m["color_hue"] == "yellow" and m["color_shift_b"] > 0
    assert abs(m["color_shift_a"]) < 0.1 * m["color_shift_b"]
    for axis in (0, 1, 3):                      # a pure motion reads as no photometric change
        assert planted[axis]["shares"]["brightness"] < 0.05
        assert planted[axis]["measures"]["motion_explained"] > 0.5


def test_empty_axes_are_inactive(planted):
    for axis in PLANTED_EMPTY:
        d = planted[axis]
        assert d["label"] == "inactive" and d["inactive"] and d["second_label"] is None
        assert d["measures"]["delta_e"] == pytest.approx(0.0, abs=1e-6)


def test_walking_the_other_way_flips_the_signs():
    Q = -torch.eye(12)[[0, 2, 3]]
    d = describe_directions(PlantedScene(), Q, path_size=PLANTED_PATH, seeds=4)
    assert [x["label"] for x in d] == ["shift-x", "zoom", "rotation"]
    assert d[0]["measures"]["shift_x_fraction"] == pytest.approx(-0.16, rel=0.2)
    assert d[1]["measures"]["scale_ratio"] == pytest.approx(1 / 1.4, rel=0.1)
    assert d[2]["measures"]["rotation_degrees"] == pytest.approx(-30, rel=0.2)


def test_a_random_rotation_of_the_planted_axes_gets_mixed_labels_at_lower_confidence(planted):
    active = [axis for axis, *_ in PLANTED]
    R = random_orthonormal(len(active), len(active), torch.Generator().manual_seed(3))
    Q = torch.zeros(len(active), 12)
    Q[:, active] = R                                            # mixtures of the planted factors
    mixed = describe_directions(PlantedScene(), Q, path_size=PLANTED_PATH, seeds=SEEDS)
    planted_conf = np.mean([planted[a]["label_confidence"] for a in active])
    mixed_conf = np.mean([d["label_confidence"] for d in mixed])
    assert mixed_conf < planted_conf - 0.25, (mixed_conf, planted_conf)
    planted_labels = {planted[a]["label"] for a in active}
    assert len({d["label"] for d in mixed} & planted_labels) < len(planted_labels)
    assert any(d["second_label"] is not None for d in mixed)       # nearly as strong a second


def test_describing_from_chunks_of_walks_gives_the_same_descriptions():
    """What score does (chunks of whole walks, split anywhere) equals describing in one go."""
    G, Q = PlantedScene(), torch.eye(12)[[0, 4, 10]]
    whole = describe_directions(G, Q, path_size=PLANTED_PATH, seeds=3, steps=5)
    z = torch.stack([describe_latents(s) for s in range(3)])
    from biggan_directions.media.walks import easing, walk_latents
    lat = walk_latents(z, Q, easing("linear", 5), PLANTED_PATH).permute(0, 2, 1, 3).reshape(9, 5, 12)
    d = Describer(3, 3, 5)
    for w0, w1 in ((0, 2), (2, 7), (7, 9)):
        d.add(w0, G(lat[w0:w1].reshape(-1, 12)))
    chunked = d.finish()
    for a, b in zip(whole, chunked):
        assert a["label"] == b["label"]
        for k, v in a["measures"].items():
            if isinstance(v, float):
                assert b["measures"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    with pytest.raises(ValueError, match="expected"):
        Describer(1, 2, 5).add(1, G(lat[0]))


def describe_latents(seed: int) -> torch.Tensor:
    from biggan_directions.models.generator import latents_for_seeds
    return latents_for_seeds([seed], 12, PlantedScene.truncation)[0]


def test_the_object_region_is_where_the_seeds_differ():
    """Six seeds of a plain grey frame with a square whose colour changes per seed."""
    rng = np.random.default_rng(0)
    frames = np.full((6, 48, 48, 3), 120, np.uint8)
    for s in range(6):
        frames[s, 16:32, 12:28] = rng.integers(0, 255, 3)
    lab = to_lab(frames)
    core, region = object_mask(lab)
    square = np.zeros((48, 48), bool)
    square[16:32, 12:28] = True
    assert core[square].mean() > 0.9 and core[~square].mean() < 0.1
    assert region.sum() > core.sum() and region[square].all()
    obj = seed_object(lab[0], region)
    assert obj[square].mean() > 0.9 and not obj[~region].any()
    # one seed, or seeds that are all alike: the whole frame is the object
    assert object_mask(lab[:1])[0].all() and object_mask(np.repeat(lab[:1], 3, 0))[1].all()


def test_hue_names_of_the_primaries_and_the_vocabulary():
    for hue, (a, b) in zip(HUES, [(60, 40), (-10, 80), (-70, 60), (-40, -15), (30, -90), (80, -50)]):
        assert hue_name(a, b) == hue
    assert len(LABELS) == 7 + len(HUES) + 3 and "color:cyan" in LABELS
    assert check_label("zoom") == "zoom"
    with pytest.raises(ValueError, match="color:red"):
        check_label("colour")


def test_the_config_checks_its_fields():
    assert DescribeConfig().second == pytest.approx(0.6)
    with pytest.raises(SettingError, match="steps"):
        DescribeConfig(steps=4)
    with pytest.raises(SettingError, match="moving"):
        DescribeConfig(moving=1.5)
    with pytest.raises(SettingError, match="flow_stride"):
        DescribeConfig(flow_stride=0)
    with pytest.raises(SettingError, match="path_size"):
        describe_directions(PlantedScene(), torch.eye(12)[:1], path_size=0)


def test_the_flow_pairs_of_a_walk():
    assert flow_frames(9, 1) == list(range(9))
    assert flow_frames(9, 2) == [0, 2, 4, 6, 8]
    assert flow_frames(9, 3) == [0, 3, 6, 8]                  # the last frame always
    assert flow_frames(3, 4) == [0, 2]


def test_every_second_frame_measures_the_motion_as_every_frame_does():
    """The default flow_stride 2 (half the flow's cost) against every consecutive pair: the
    planted shift, zoom and turn within 2% of each other and of the planted amounts' 20%."""
    Q = torch.eye(12)[[0, 2, 3]]
    every, second = (describe_directions(PlantedScene(), Q, path_size=PLANTED_PATH, seeds=4,
                                         config=DescribeConfig(flow_stride=k)) for k in (1, 2))
    for a, b, measure in zip(every, second, ("shift_x_fraction", "scale_ratio",
                                             "rotation_degrees")):
        assert a["label"] == b["label"]
        assert b["measures"][measure] == pytest.approx(a["measures"][measure], rel=0.02)


def test_shrinking_all_frames_at_once_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    for side in (128, 96):                      # a whole factor (stacked), and 96 -> 64 (not)
        frames = rng.integers(0, 256, (2, 3, side, side, 3), dtype=np.uint8)
        one = np.stack([[cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in walk]
                        for walk in frames])
        assert np.array_equal(shrink(frames, 64), one)
    small = rng.integers(0, 256, (1, 3, 32, 32, 3), dtype=np.uint8)
    assert shrink(small, 64) is small


def test_describing_a_larger_frame_at_its_full_size_or_shrunk_names_the_same_factor():
    """A 128 px planted scene described at 128 px and at the default 64: the same labels and
    amounts within 5% (the shrunk frames are area averages of the same scene)."""
    G = PlantedScene()
    G.resolution = 128
    Q = torch.eye(12)[[0, 3, 4, 8]]
    full, shrunk = (describe_directions(G, Q, path_size=PLANTED_PATH, seeds=4,
                                        config=DescribeConfig(size=k)) for k in (128, 64))
    for a, b in zip(full, shrunk):
        assert a["label"] == b["label"]
    for d, (measure, rel) in zip(range(3), (("shift_x_fraction", 0.05),
                                            ("rotation_degrees", 0.05),
                                            ("brightness_delta", 0.05))):
        assert shrunk[d]["measures"][measure] == pytest.approx(full[d]["measures"][measure],
                                                               rel=rel)
