"""How a loss binds its parts: which samplers it reaches, which temperature it keeps, ``γ``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

from maxent_components.temperature import FixedTemperature, Temperature, as_temperature

__all__ = ["check_gamma", "reachable_samplers", "resolve_temperature"]


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
