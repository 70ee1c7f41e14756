"""Hypothesis-driven bad input over the public constructors and every loss's forward.

A bad argument (a non-positive, non-finite, non-numeric or out-of-range number, an unknown choice, a
spec of the wrong kind) is refused at construction by an error that names the argument; a batch with
a missing key, a wrong dtype, a wrong width or no rows is refused on the first call by a named error,
never a raw torch ``RuntimeError`` and never a NaN loss.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensordict.nn import TensorDictModule
from test_ownership import ALGORITHMS, BOX, DISCRETE, OBS, batch
from test_pcl import A, S, deterministic_mdp, slices, table_module
from torchrl.data import OneHot, Unbounded

from maxent_components import (
    AnnealedTemperature,
    AutoTemperature,
    BoltzmannSampler,
    CategoricalSampler,
    ExactSoftValue,
    FixedTemperature,
    GaussianSampler,
    ImportanceSoftValue,
    LangevinSampler,
    MixtureSampler,
    PathConsistencyLoss,
    PolicySoftValue,
    SoftQLoss,
    SVGDSampler,
    UniformSampler,
    UniformSoftValue,
)
from maxent_components.modules import discrete_qvalue_network
from maxent_components.validation import EnvironmentDataError, InputError

pytestmark = pytest.mark.usefixtures("one_thread")

NOT_A_NUMBER = st.one_of(st.text(max_size=3), st.lists(st.integers(), max_size=2), st.just(None), st.just(object()))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
BAD = {
    "positive_float": st.one_of(st.floats(max_value=0.0, allow_nan=False), NON_FINITE, NOT_A_NUMBER),
    # a positive factor or a non-empty sequence of them: bad scalars, the empty list, a list with a bad entry
    "positive_factors": st.one_of(
        st.floats(max_value=0.0, allow_nan=False), NON_FINITE, st.text(max_size=3), st.just(None), st.just(object()),
        st.just([]),
        st.lists(st.one_of(st.floats(max_value=0.0, allow_nan=False), NON_FINITE, st.text(max_size=2), st.just(None)),
                 min_size=1, max_size=2).map(lambda bad: [1.0, *bad]),
    ),
    "nonnegative_float": st.one_of(st.floats(max_value=0.0, exclude_max=True, allow_nan=False), NON_FINITE, NOT_A_NUMBER),
    "positive_int": st.one_of(st.integers(max_value=0), st.floats(allow_nan=True).filter(lambda x: x != int(x) if math.isfinite(x) else True), NOT_A_NUMBER),
    "probability": st.one_of(st.floats(min_value=1.0, exclude_min=True, allow_nan=False), st.floats(max_value=0.0, exclude_max=True, allow_nan=False), NON_FINITE, NOT_A_NUMBER),
    "choice": st.text(min_size=1, max_size=6).filter(lambda s: s not in ("paper", "reference", "min", "mean", "l2", "smooth_l1", "vmap", "loop")),
    "box_spec": st.sampled_from([DISCRETE, Unbounded(shape=(2,)), None]),
}


def _qnet():
    return discrete_qvalue_network(OBS, 4, num_cells=[8])


#: (constructor, valid keyword arguments, the argument to spoil, the kind of its bad values)
CASES = [
    (FixedTemperature, {}, "alpha", "nonnegative_float"),
    (AutoTemperature, {"target_entropy": -1.0}, "alpha_init", "positive_float"),
    (AutoTemperature, {"action_spec": BOX}, "entropy_ratio", "probability"),
    (AutoTemperature, {"target_entropy": -1.0}, "target_entropy", "box_spec"),
    (AnnealedTemperature, {"alpha_init": 1.0, "alpha_final": 0.1, "num_steps": 10}, "alpha_init", "positive_float"),
    (AnnealedTemperature, {"alpha_init": 1.0, "alpha_final": 0.1, "num_steps": 10}, "num_steps", "positive_int"),
    (UniformSoftValue, {"action_spec": BOX}, "num_samples", "positive_int"),
    (UniformSoftValue, {"action_spec": BOX}, "alpha", "nonnegative_float"),
    (UniformSoftValue, {}, "action_spec", "box_spec"),
    (ImportanceSoftValue, {}, "num_samples", "positive_int"),
    (PolicySoftValue, {}, "num_samples", "positive_int"),
    (UniformSampler, {}, "action_spec", "box_spec"),
    (GaussianSampler, {"action_spec": BOX, "observation_dim": OBS}, "num_loss_samples", "positive_int"),
    (GaussianSampler, {"action_spec": BOX}, "observation_dim", "positive_int"),
    (GaussianSampler, {"observation_dim": OBS}, "action_spec", "box_spec"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS}, "num_particles", "positive_int"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS}, "fixed_fraction", "probability"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS}, "bandwidth", "choice"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS}, "bandwidth_scale", "positive_factors"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS}, "min_bandwidth", "positive_float"),
    (SVGDSampler, {"action_spec": BOX, "observation_dim": OBS, "anneal_steps": 10}, "anneal_from", "positive_float"),
    (LangevinSampler, {"action_spec": BOX}, "num_steps", "positive_int"),
    (LangevinSampler, {"action_spec": BOX}, "step_size", "positive_float"),
    (BoltzmannSampler, {"action_spec": DISCRETE}, "alpha", "nonnegative_float"),
    (ExactSoftValue, {}, "alpha", "nonnegative_float"),
    (CategoricalSampler, {"action_spec": DISCRETE}, "observation_dim", "positive_int"),
    (PathConsistencyLoss, {"actor": "categorical", "value_network": "value", "alpha": 1.0}, "gamma", "probability"),
    (PathConsistencyLoss, {"actor": "categorical", "value_network": "value"}, "alpha", "nonnegative_float"),
    (SoftQLoss, {"qvalue_network": "qnet", "soft_value": "exact", "alpha": 1.0}, "num_qvalue_nets", "positive_int"),
    (SoftQLoss, {"qvalue_network": "qnet", "soft_value": "exact", "alpha": 1.0}, "target_reduction", "choice"),
    (SoftQLoss, {"qvalue_network": "qnet", "soft_value": "exact", "alpha": 1.0}, "loss_function", "choice"),
    (SoftQLoss, {"qvalue_network": "qnet", "soft_value": "exact"}, "alpha", "nonnegative_float"),
]


def _build(kwargs):
    made = dict(kwargs)
    if made.get("actor") == "categorical":
        made["actor"] = CategoricalSampler(action_spec=DISCRETE, observation_dim=OBS, num_cells=[8])
    if made.get("value_network") == "value":
        made["value_network"] = TensorDictModule(torch.nn.Linear(OBS, 1), in_keys=["observation"], out_keys=["state_value"])
    if made.get("qvalue_network") == "qnet":
        made["qvalue_network"] = _qnet()
    if made.get("soft_value") == "exact":
        made["soft_value"] = ExactSoftValue()
    return made


@pytest.mark.parametrize(("cls", "kwargs", "arg", "kind"), CASES, ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bad_argument_is_refused_by_name(cls, kwargs, arg, kind, data):
    value = data.draw(BAD[kind], label=arg)
    if arg == "alpha" and value is None and cls is not FixedTemperature:
        return  # alpha=None means "the one the parts were built with": valid
    if kind == "positive_int" and arg == "observation_dim" and value is None:
        return  # observation_dim=None is valid when a policy network is given; without one it is refused below
    with pytest.raises((ValueError, TypeError)) as caught:
        cls(**_build(kwargs), **{arg: value})
    assert arg in str(caught.value), (arg, value, str(caught.value))


def test_mixture_weights_are_checked_by_name():
    parts = [UniformSampler(action_spec=BOX), UniformSampler(action_spec=BOX)]
    for weights in ([0.5], [-1.0, 2.0], [math.nan, 1.0], [0.0, 0.0], "ab"):
        with pytest.raises((ValueError, TypeError), match="weights"):
            MixtureSampler(parts, weights=weights)


# ------------------------------------------------------------------------------------------------
# Forward: spoiled batches
# ------------------------------------------------------------------------------------------------
KEYS = ["observation", "action", ("next", "observation"), ("next", "reward"), ("next", "done"), ("next", "terminated")]
SPOIL = st.sampled_from(["drop", "float64", "float16", "int", "width", "empty", "nan"])


def _spoil(td, key, how):
    value = td.get(key)
    if how == "drop":
        del td[key]
    elif how in ("float64", "float16"):
        td.set(key, value.to(getattr(torch, how)))
    elif how == "int":
        td.set(key, value.long())
    elif how == "width":
        td.set(key, torch.cat([value, value[..., :1]], -1).to(value.dtype))
    elif how == "empty":
        return td[:0]
    elif how == "nan" and value.is_floating_point():
        value = value.clone()
        value.view(-1)[0] = math.nan
        td.set(key, value)
    return td


@pytest.mark.parametrize("name", list(ALGORITHMS))
@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from(KEYS), how=SPOIL)
def test_a_spoiled_batch_is_a_named_error_or_a_finite_loss(name, key, how):
    build, discrete, loss_keys = ALGORITHMS[name]
    torch.manual_seed(0)
    loss = build()
    td = _spoil(batch(discrete), key, how)
    try:
        out = loss(td)
    except (InputError, EnvironmentDataError) as err:  # named, with the rows, keys and shapes
        assert str(err).startswith(("SoftQLoss", "collected")), str(err)
        return
    except KeyError as err:  # a missing entry, named
        assert "SoftQLoss needs" in str(err) or "needs" in str(err), str(err)
        return
    except ValueError as err:  # a shape check of the loss, naming the entry
        assert any(part in str(err) for part in ("reward", "done", "terminated", "action", "observation")), str(err)
        return
    # Accepted: then it was harmless (e.g. an integer one-hot action, a bool cast of done) and the
    # losses are finite.
    for k in loss_keys:
        assert torch.isfinite(out[k]), (key, how, k)


def _pcl(unified: bool):
    """A PCL (or unified PCL) loss on the test MDP of tests/test_pcl.py and a batch of its slices."""
    P, R, terminal, nxt = deterministic_mdp(0)
    td = slices(P, R, terminal, nxt, torch.full((S, A), 1.0 / A), num=8, seed=0)
    if unified:
        loss = PathConsistencyLoss(
            BoltzmannSampler(action_spec=OneHot(A)), qvalue_network=table_module(torch.zeros(S, A), "action_value"),
            soft_value=ExactSoftValue(), alpha=0.5,
        )
    else:
        actor = CategoricalSampler(policy_network=table_module(torch.zeros(S, A), "logits"), action_spec=OneHot(A))
        loss = PathConsistencyLoss(actor, table_module(torch.zeros(S), "state_value"), alpha=0.5)
    return loss, td


@pytest.mark.parametrize("unified", [False, True], ids=["pcl", "unified"])
@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from([k for k in KEYS if k != ("next", "done")]), how=SPOIL)
def test_a_spoiled_slice_batch_is_a_named_error_or_a_finite_loss(unified, key, how):
    loss, td = _pcl(unified)
    td = _spoil(td, key, how)
    try:
        out = loss(td)
    except (InputError, EnvironmentDataError) as err:
        assert str(err).startswith("PathConsistencyLoss"), str(err)
        return
    except (KeyError, ValueError) as err:
        assert "PathConsistencyLoss" in str(err), str(err)
        return
    for k in out.keys():
        assert torch.isfinite(out[k]).all(), (key, how, k)
