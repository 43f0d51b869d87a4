"""Greedy layer-wise pre-training: what each stage trains, freezes and leaves behind."""

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.data.interactions import RatingScale
from ncae_exp.errors import ConfigError
from ncae_exp.models.ncae.model import NCAE
from ncae_exp.models.ncae.pretrain import PretrainSchedule, Stage, run_stage

SCHEDULES = {
    "sus": ("supervised", "unsupervised", "supervised"),
    "su": ("supervised", "unsupervised", None),
    "ss": ("supervised", "supervised", None),
    "us": ("unsupervised", "supervised", None),
    "uu": ("unsupervised", "unsupervised", None),
}


def schedule(name, epochs=2):
    first, middle, top = SCHEDULES[name]
    return PretrainSchedule(name, first, middle, top, epochs)


def ratings(seed=0, shape=(60, 40), density=0.3):
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random(shape) < density, rng.integers(1, 6, shape), 0).astype(np.float32)
    return sp.csr_matrix(dense)


def model(hidden=(8, 6), based="item", pretrain=None, seed=0):
    m = NCAE(hidden=list(hidden), based=based, l2=0.001, batch_size=16, seed=seed, pretrain=pretrain)
    m.prepare(ratings(), RatingScale(1.0, 5.0))
    return m


def snapshot(m):
    return {k: v.copy() for k, v in m.get_state().items()}


def changed(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


def test_stage_names_and_depth_rules():
    sus = schedule("sus")
    assert [(s.layer, s.kind) for s in sus.stages(2)] == [(1, "sr"), (2, "dr"), (3, "v")]
    assert [s.metric for s in sus.stages(3)] == ["pretrain_sr_loss", "pretrain_dr_loss", "pretrain_dr3_loss", "pretrain_v_loss"]
    assert [(s.layer, s.kind) for s in sus.stages(1)] == [(1, "sr"), (2, "v")]  # SINGLE: SR then V
    assert [s.kind for s in schedule("us").stages(2)] == ["ur", "sh"]
    for name in ("su", "ss", "us", "uu"):
        with pytest.raises(ConfigError, match="one layer"):
            schedule(name).stages(1)
        with pytest.raises(ConfigError):
            NCAE(hidden=[8], pretrain=schedule(name))
    with pytest.raises(ConfigError, match="pretrain.first"):
        PretrainSchedule("x", "maybe", "supervised", None, 1)
    with pytest.raises(ConfigError, match="epochs_per_stage"):
        PretrainSchedule("x", "supervised", "supervised", None, 0)
    assert not PretrainSchedule("none").enabled and PretrainSchedule("none").stages(2) == []


def test_supervised_sr_stage_lowers_its_loss():
    m = model()
    losses = []
    run_stage(m.pretrain_context(), Stage(1, "sr", "pretrain_sr_loss"), 8, lambda d, step: losses.append(d["pretrain_sr_loss"]))
    assert len(losses) == 8 and losses[-1] < losses[0]


def test_sr_stage_touches_only_layer_one():
    m = model()
    before = snapshot(m)
    run_stage(m.pretrain_context(), Stage(1, "sr", "pretrain_sr_loss"), 2, lambda d, s: None)
    assert changed(before, snapshot(m)) == {"layer_1/kernel", "layer_1/bias"}


def test_dr_stage_keeps_layer_one_bit_identical():
    m = model()
    run_stage(m.pretrain_context(), Stage(1, "sr", "pretrain_sr_loss"), 2, lambda d, s: None)
    before = snapshot(m)
    run_stage(m.pretrain_context(), Stage(2, "dr", "pretrain_dr_loss"), 3, lambda d, s: None)
    assert changed(before, snapshot(m)) == {"layer_2/kernel", "layer_2/bias"}


def test_v_stage_changes_only_the_output_layer():
    m = model()
    before = snapshot(m)
    run_stage(m.pretrain_context(), Stage(3, "v", "pretrain_v_loss"), 3, lambda d, s: None)
    assert changed(before, snapshot(m)) == {"layer_3/kernel", "layer_3/bias"}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_leaves_a_plain_trainable_network(name):
    plain = model()
    m = model(pretrain=schedule(name, epochs=1))
    logged = []
    extras = m.before_fit(lambda d, step: logged.append((tuple(d), step)))
    assert extras["pretrain_seconds"] > 0
    # the temporary decoders are gone: the state is exactly the network's own variables
    assert set(m.get_state()) == set(plain.get_state())
    assert all(v.trainable for v in m.network.variables)
    assert {k for (k,), _ in logged} == {s.metric for s in m.pretrain_schedule.stages(2)}
    # fine-tuning afterwards moves every parameter
    before = snapshot(m)
    m.train_epoch()
    assert changed(before, snapshot(m)) == set(before)
