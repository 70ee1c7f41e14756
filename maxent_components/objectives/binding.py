"""How a loss binds its parts: the checks, which samplers it reaches, which temperature it keeps,
its parameter groups, ``γ``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

from torchrl.data import Categorical, OneHot

from maxent_components.temperature import FixedTemperature, Temperature, as_temperature

__all__ = [
    "bind_parts",
    "check_gamma",
    "check_parts",
    "parameter_groups",
    "reachable_samplers",
    "resolve_temperature",
]


def check_gamma(gamma) -> float:
    """``gamma`` as a float in ``(0, 1]``, or a ``ValueError`` naming it."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or math.isnan(float(gamma)):
        raise ValueError(f"gamma must be a number in (0, 1], got {gamma!r}.")
    if not 0.0 < float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma!r}.")
    return float(gamma)


def reachable_samplers(soft_value, actor) -> Iterator[tuple[str, object]]:
    """``(name, sampler)`` for every sampler the estimator draws from and every sampler the actor
    draws from (a warm start, mixture components), depth first, each once; the actor itself is not
    listed."""
    seen: set[int] = set() if actor is None else {id(actor)}

    def walk(name: str, sampler) -> Iterator[tuple[str, object]]:
        if id(sampler) in seen:
            return
        seen.add(id(sampler))
        yield name, sampler
        for i, child in enumerate(sampler.subsamplers()):
            yield from walk(f"{name}.subsamplers()[{i}]", child)

    if actor is not None:
        for i, child in enumerate(actor.subsamplers()):
            yield from walk(f"actor.subsamplers()[{i}]", child)
    if soft_value is not None:
        for i, sampler in enumerate(soft_value.samplers()):
            yield from walk(f"soft_value.samplers()[{i}]", sampler)


def actor_spec(actor, soft_value):
    """The action spec of the actor, else of the first sampler the estimator draws from (``None``
    for the exact estimator of a discrete Q without an actor)."""
    if actor is not None:
        return actor.action_spec
    return next((s.action_spec for _, s in reachable_samplers(soft_value, None) if hasattr(s, "action_spec")), None)


def resolve_temperature(alpha, soft_value, actor) -> Temperature:
    """The one temperature of a loss: ``alpha``, or the one its parts were built with.

    Parts built with a temperature must agree with ``alpha`` and with each other: the same object,
    or fixed temperatures of equal value. Anything else is a ``ValueError`` naming both places.
    """
    candidates: list[tuple[str, Temperature]] = []
    if alpha is not None:
        candidates.append(("alpha", as_temperature(alpha)))
    parts = [("soft_value", soft_value)] + ([("actor", actor)] if actor is not None else [])
    for name, part in [*parts, *reachable_samplers(soft_value, actor)]:
        temperature = getattr(part, "temperature", None)
        if temperature is not None:
            candidates.append((f"{name} ({type(part).__name__})", temperature))
    if not candidates:
        raise ValueError(
            "alpha is required: the loss needs a temperature (a float, FixedTemperature, "
            "AutoTemperature or AnnealedTemperature)."
        )
    first_name, first = candidates[0]
    for name, other in candidates[1:]:
        same = other is first or (
            isinstance(other, FixedTemperature)
            and isinstance(first, FixedTemperature)
            and other.value() == first.value()
        )
        if not same:
            raise ValueError(
                f"two temperatures: {first_name} is {_describe(first)} but {name} is {_describe(other)}; "
                f"give alpha in one place (SoftQLoss(..., alpha=...)) and build the parts without it."
            )
    return first


def _describe(temperature: Temperature) -> str:
    if isinstance(temperature, FixedTemperature):
        return f"alpha={temperature.value():g}"
    return type(temperature).__name__


def check_parts(qvalue_network, soft_value, actor, alpha) -> Temperature:
    """Refuse parts that cannot serve the loss (wrong types, another Q network, a policy network with
    no loss to train it, a learned temperature without an entropy to drive it); return the loss's one
    temperature."""
    from maxent_components.samplers.base import PolicySampler
    from maxent_components.soft_value.base import SoftValueEstimator

    if not isinstance(soft_value, SoftValueEstimator):
        raise TypeError(f"soft_value must be a soft-value estimator (e.g. ExactSoftValue()), got {type(soft_value).__name__}.")
    if actor is not None and not isinstance(actor, PolicySampler):
        raise TypeError(f"actor must be a policy sampler (e.g. GaussianSampler), got {type(actor).__name__}.")
    parts = [("soft_value", soft_value)] + ([("actor", actor)] if actor is not None else [])
    for name, part in [*parts, *reachable_samplers(soft_value, actor)]:
        if part.qvalue_network is not None and part.qvalue_network is not qvalue_network:
            raise ValueError(
                f"{name} ({type(part).__name__}) was built on another Q network than the loss's "
                f"qvalue_network; build it without one: the loss binds its own Q ensemble."
            )
    for name, part in [*parts[1:], *reachable_samplers(soft_value, actor)]:
        if getattr(part, "policy_network", None) is not None and not part.has_loss:
            raise ValueError(
                f"{name} ({type(part).__name__}) has a policy network but no loss to train it "
                f"(has_loss is False); use a sampler the loss can train (e.g. GaussianSampler)."
            )
    spec = actor_spec(actor, soft_value) if actor is not None else None
    if "continuous" not in soft_value.action_spaces and spec is not None and not isinstance(spec, (OneHot, Categorical)):
        raise ValueError(
            f"soft_value={type(soft_value).__name__} sums Q(s, ·) over a finite action set, but the actor "
            f"({type(actor).__name__}) acts in a continuous action space ({type(spec).__name__}); use "
            f"UniformSoftValue, ImportanceSoftValue or PolicySoftValue."
        )
    temperature = resolve_temperature(alpha, soft_value, actor)
    if isinstance(temperature, FixedTemperature) and temperature.value() == 0:
        needs = [("soft_value", soft_value)] if not soft_value.allows_zero_alpha else []
        needs += [(name, s) for name, s in [*parts[1:], *reachable_samplers(soft_value, actor)] if not s.zero_alpha]
        if needs:
            name, part = needs[0]
            raise ValueError(
                f"alpha=0 leaves {name} ({type(part).__name__}) undefined: it divides Q by α; give α > 0 "
                f"(α → 0 is the greedy limit only of ExactSoftValue, PolicySoftValue and the Boltzmann, "
                f"Categorical and Gaussian samplers)."
            )
    if temperature.learned and (actor is None or not actor.has_loss or not actor.has_log_prob):
        raise ValueError(
            f"alpha: a learned temperature ({type(temperature).__name__}) needs an actor with a loss "
            f"and a tractable log-probability (GaussianSampler, CategoricalSampler) to measure its "
            f"entropy; got actor={type(actor).__name__ if actor is not None else None}."
        )
    return temperature


def bind_parts(soft_value, actor, online, temperature: Temperature, *, reduction: str) -> list:
    """Bind the estimator, the actor and every sampler they draw from to the online ``QFunction`` and
    the temperature; return the estimator's amortized samplers that the actor does not train (the
    proposals the loss trains itself)."""
    soft_value.bind(online, temperature, actor=actor, reduction=reduction)
    if actor is not None:
        actor.bind(online, temperature)
    bound_by_actor = {id(s) for _, s in reachable_samplers(None, actor)} | {id(actor)}
    proposals = []
    for _, sampler in reachable_samplers(soft_value, None):
        if id(sampler) not in bound_by_actor:
            sampler.bind(online, temperature)
            if sampler.has_loss and all(sampler is not p for p in proposals):
                proposals.append(sampler)
    return proposals


def parameter_groups(loss, *, lr_qvalue=None, lr_actor=None, lr_alpha=None) -> list[dict]:
    """The ``qvalue``, ``actor`` (actor and trained proposals) and ``alpha`` groups of ``loss``."""
    from torch import nn

    temperature = list(loss.temperature.parameters())
    qvalue = [p for p in loss.qvalue_network_params.values(True, True) if isinstance(p, nn.Parameter)]
    seen = {id(p) for p in qvalue + temperature}
    actor = []
    for module in [m for m in (loss.actor, *loss.proposals) if m is not None]:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                actor.append(p)
    groups = []
    for name, params, lr in (("qvalue", qvalue, lr_qvalue), ("actor", actor, lr_actor), ("alpha", temperature, lr_alpha)):
        if params:
            groups.append({"name": name, "params": params, **({"lr": lr} if lr is not None else {})})
    return groups
