import math

import pytest
import torch

from maxent_components.temperature import (
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
    as_temperature,
)


def test_fixed_temperature_is_a_buffer_and_round_trips():
    temperature = FixedTemperature(0.3)
    assert list(temperature.parameters()) == []
    restored = FixedTemperature(1.0)
    restored.load_state_dict(temperature.state_dict())
    assert restored().item() == pytest.approx(0.3)
    assert temperature.loss(torch.ones(3)).is_empty()


def test_fixed_temperature_allows_zero_but_not_negative():
    assert FixedTemperature(0.0)().item() == 0.0
    with pytest.raises(ValueError, match="alpha"):
        FixedTemperature(-0.1)
    with pytest.raises(ValueError, match="alpha"):
        FixedTemperature(float("nan"))


def test_auto_temperature_gradient_sign_follows_entropy_gap():
    temperature = AutoTemperature(target_entropy=0.5, alpha_init=2.0)
    assert temperature().item() == pytest.approx(2.0)
    temperature.loss(torch.tensor([0.1, 0.2]))["loss_alpha"].backward()
    # entropy below target: the gradient step (−grad) must raise log α
    assert temperature.log_alpha.grad.item() < 0
    temperature.log_alpha.grad = None
    temperature.loss(torch.tensor([1.0, 2.0]))["loss_alpha"].backward()
    assert temperature.log_alpha.grad.item() > 0


def test_auto_temperature_gradient_equals_closed_form():
    temperature = AutoTemperature(target_entropy=-1.0, alpha_init=0.7)
    entropy = torch.tensor([0.3, -0.5, 2.0])
    temperature.loss(entropy)["loss_alpha"].backward()
    assert temperature.log_alpha.grad.item() == pytest.approx((entropy + 1.0).mean().item())


def test_auto_temperature_converges_to_the_entropy_target_on_a_bernoulli_policy():
    # π = Boltzmann over two actions with Q = (0, 1): H(α) increases with α, so there is one α*
    # with H(α*) = target; stochastic gradient descent on log α must find it.
    q = torch.tensor([0.0, 1.0])
    target = 0.5
    temperature = AutoTemperature(target_entropy=target, alpha_init=0.05)
    optimiser = torch.optim.Adam(temperature.parameters(), lr=0.05)
    for _ in range(2000):
        log_pi = torch.log_softmax(q / temperature.alpha, -1)
        entropy = -(log_pi.exp() * log_pi).sum()
        optimiser.zero_grad()
        temperature.loss(entropy)["loss_alpha"].backward()
        optimiser.step()
    log_pi = torch.log_softmax(q / temperature.alpha, -1)
    assert -(log_pi.exp() * log_pi).sum().item() == pytest.approx(target, abs=1e-2)


def test_auto_temperature_clamps_and_validates():
    temperature = AutoTemperature(target_entropy=0.0, alpha_init=1.0, min_alpha=0.5, max_alpha=0.8)
    assert temperature().item() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="min_alpha"):
        AutoTemperature(target_entropy=0.0, min_alpha=2.0, max_alpha=1.0)
    with pytest.raises(ValueError, match="target_entropy"):
        AutoTemperature(target_entropy=float("inf"))
    with pytest.raises(ValueError, match="alpha_init"):
        AutoTemperature(target_entropy=0.0, alpha_init=0.0)


def test_annealed_temperature_is_log_linear_and_saved():
    temperature = AnnealedTemperature(alpha_init=10.0, alpha_final=0.1, num_steps=4)
    values = []
    for _ in range(6):
        values.append(temperature().item())
        temperature.step()
    expected = [10.0 * (0.01 ** (min(t, 4) / 4)) for t in range(6)]
    assert values == pytest.approx(expected, rel=1e-5)
    restored = AnnealedTemperature(alpha_init=10.0, alpha_final=0.1, num_steps=4)
    restored.load_state_dict(temperature.state_dict())
    assert restored().item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="num_steps"):
        AnnealedTemperature(alpha_init=1.0, alpha_final=0.1, num_steps=0)


def test_value_is_an_exact_float_when_constant_and_a_detached_tensor_otherwise():
    fixed = FixedTemperature(0.3)
    # The exact Python float, not the float32 buffer (no device read, exact algebra).
    assert type(fixed.value()) is float and fixed.value() == 0.3
    assert fixed().item() != 0.3 and fixed().item() == pytest.approx(0.3)
    restored = FixedTemperature(1.0)
    restored.load_state_dict(fixed.state_dict())
    assert type(restored.value()) is float and restored.value() == pytest.approx(0.3, rel=1e-7)
    assert FixedTemperature(0.0).value() == 0.0

    auto = AutoTemperature(target_entropy=0.0, alpha_init=0.7, max_alpha=2.0)
    value = auto.value()
    assert isinstance(value, torch.Tensor) and not value.requires_grad
    assert value.item() == pytest.approx(0.7)
    with torch.no_grad():
        auto.log_alpha.fill_(math.log(5.0))
    assert auto.value().item() == pytest.approx(2.0)  # clamped, as forward()
    assert auto.alpha.item() == pytest.approx(2.0) and not auto.alpha.requires_grad

    annealed = AnnealedTemperature(alpha_init=1.0, alpha_final=0.01, num_steps=2)
    assert isinstance(annealed.value(), torch.Tensor) and annealed.value().item() == pytest.approx(1.0)
    annealed.step()
    assert annealed.value().item() == pytest.approx(0.1, rel=1e-5)


def test_only_the_auto_temperature_is_learned():
    assert AutoTemperature(target_entropy=0.0).learned is True
    assert FixedTemperature(0.5).learned is False
    assert AnnealedTemperature(alpha_init=1.0, alpha_final=0.1, num_steps=3).learned is False
    # An unlearned temperature has no loss terms; a learned one has loss_alpha.
    entropy = torch.tensor([0.2, 0.4])
    assert FixedTemperature(0.5).loss(entropy).is_empty()
    assert AnnealedTemperature(alpha_init=1.0, alpha_final=0.1, num_steps=3).loss(entropy).is_empty()
    assert set(AutoTemperature(target_entropy=0.0).loss(entropy).keys()) == {"loss_alpha"}


def test_as_temperature():
    fixed = as_temperature(0.25)
    assert isinstance(fixed, FixedTemperature) and fixed().item() == 0.25
    auto = AutoTemperature(target_entropy=0.0)
    assert as_temperature(auto) is auto
    with pytest.raises(TypeError, match="alpha"):
        as_temperature("0.1")
    assert math.isclose(as_temperature(2)().item(), 2.0)


def test_incomplete_components_say_what_they_must_define():
    from tensordict import TensorDict
    from torchrl.data import Bounded, OneHot

    from maxent_components.samplers._discrete import DiscreteSampler
    from maxent_components.samplers.base import PolicySampler
    from maxent_components.temperature import Temperature

    class Bare(Temperature):
        pass

    with pytest.raises(NotImplementedError, match="Bare must define forward"):
        Bare()()
    td = TensorDict(observation=torch.zeros(2, 3), batch_size=[2])
    with pytest.raises(NotImplementedError, match="PolicySampler must define sample"):
        PolicySampler(None, action_spec=Bounded(-1.0, 1.0, shape=(1,)), alpha=1.0).sample(td)
    with pytest.raises(NotImplementedError, match="DiscreteSampler must define log_probs"):
        DiscreteSampler(None, action_spec=OneHot(2), alpha=1.0).log_probs(td)
