"""What choosing one action costs: the soft DQN recipe's actor against a hand-written Boltzmann draw.

Every environment step of a loop asks the policy for an action. The library's collector calls the
recipe's actor (``loss.actor``, a ``BoltzmannSampler`` reading the loss's Q parameters) on the step's
TensorDict; a plain loop calls its MLP on the observation and draws from ``softmax(Q/α)``. This
script times, on one CartPole-v1 observation, interleaved over ``--rounds``:

- ``actor``: ``loss.actor(td)`` as the collector calls it (sampling, under ``RANDOM`` exploration);
- its pieces: ``action_values`` (``Q(s, ·)`` through the ``QFunction`` of the loss's parameters),
  ``log_probs`` (``log softmax(Q/α)``) and ``sample`` (the draw, its log-probability and the one-hot
  encoding);
- ``plain``: the MLP on the observation tensor (also timed alone), ``softmax(Q/α)`` and
  ``torch.multinomial``;
- ``plain, Gumbel-max``: the same with ``argmax(log π + Gumbel noise)`` in place of ``multinomial``
  (an exact draw from the same distribution with other random numbers).

Reported: microseconds per call, the median over rounds, and one JSON line prefixed ``RESULT``.

Usage::

    python benchmarks/act_step.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings

import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

from torchrl.envs.utils import ExplorationType, set_exploration_type  # noqa: E402

from maxent_components.recipes import soft_dqn  # noqa: E402

from loop_speed import recipe_config  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
from timing import per_call_us, timing_options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options = timing_options(parser, calls=3000)
    cfg = recipe_config(soft_dqn, argparse.Namespace(env="cartpole", override=[]))
    env, eval_env, loss, _ = soft_dqn.build(cfg)
    td, actor, alpha = env.reset(), loss.actor, float(cfg.alpha)
    net = loss.qfunction().network.module  # the recipe's MLP, with the loss's parameters
    with torch.no_grad():
        for value, own in zip(loss.qvalue_network_params.values(True, True), net.parameters()):
            own.copy_(value)
    obs = td["observation"]

    def plain() -> torch.Tensor:
        return torch.multinomial(torch.softmax(net(obs) / alpha, -1), 1)

    def plain_gumbel() -> torch.Tensor:
        log_pi = torch.log_softmax(net(obs) / alpha, -1)
        return (log_pi - torch.empty_like(log_pi).exponential_().log()).argmax(-1)

    contenders = {
        "actor": lambda: actor(td.copy()),
        "action_values": lambda: actor.action_values(td),
        "log_probs": lambda: actor.log_probs(td),
        "sample": lambda: actor.sample(td, 1),
        "plain, the MLP alone": lambda: net(obs),
        "plain": plain,
        "plain, Gumbel-max": plain_gumbel,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        for call in contenders.values():  # warm-up
            per_call_us(call, calls=200)
        for _ in range(options.rounds):
            for name, call in contenders.items():
                times[name].append(per_call_us(call, calls=options.calls))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"torch {torch.__version__}, {options.threads} thread(s); µs per call, median of {options.rounds} rounds")
    print("| call | µs |\n|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} |")
    print("RESULT " + json.dumps({"threads": options.threads, "median_us": median}))
    env.close()
    eval_env.close()


if __name__ == "__main__":
    main()
