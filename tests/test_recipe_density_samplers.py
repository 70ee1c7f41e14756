"""The SAC recipe with the samplers that have a density: S2AC (``sampler=stein``) and DIME
(``sampler=diffusion``) run end to end; samplers without one are refused before anything runs."""

from __future__ import annotations

import math

import pytest
from recipe_runner import PNG_SIGNATURE, run_recipe, scalars, summary_of


def test_stein_and_diffusion_train_in_the_sac_recipe(tmp_path):
    out = run_recipe("sac", "-m", "sampler=stein,diffusion", "smoke=true", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    for sampler, cls in (("stein", "SteinSampler"), ("diffusion", "DiffusionSampler")):
        run_dir = tmp_path / f"sampler={sampler}"
        summary = summary_of(run_dir)
        assert summary["finished"] is True and summary["env_steps"] == 200 and summary["updates"] > 0
        assert summary["config"]["sampler"]["_target_"].endswith(cls)
        assert summary["config"]["temperature"]["_target_"].endswith("AutoTemperature")
        # the actor and the learned temperature are trained from the sampler's density
        for name in ("loss_qvalue", "loss_actor", "loss_alpha", "entropy", "alpha"):
            values = [value for _, value in scalars(run_dir, name)]
            assert values and all(math.isfinite(v) for v in values), (sampler, name)
        assert (run_dir / "learning_curve.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_papers_settings_are_the_defaults_but_the_exact_log_determinant(tmp_path):
    out = run_recipe("sac", "sampler=stein", "--help", timeout=120)
    assert out.returncode == 0, out.stderr
    for option in ("sampler.num_particles=10", "sampler.num_steps=3", "sampler.step_size=0.1",
                   "sampler.log_det=exact"):
        assert option in out.stdout, option
    assert "S2AC" in out.stdout
    out = run_recipe("sac", "sampler=diffusion", "--help", timeout=120)
    assert out.returncode == 0, out.stderr
    for option in ("sampler.num_steps=16", "sampler.prior_std=1.0", "sampler.max_noise=0.999"):
        assert option in out.stdout, option


@pytest.mark.parametrize("sampler, cls", [("svgd", "SVGDSampler"), ("langevin", "LangevinSampler"),
                                          ("svgd_mala", "LangevinSampler")])
def test_a_sampler_without_a_density_is_refused_and_pointed_to_stein(sampler, cls, tmp_path):
    run_dir = tmp_path / "run"
    out = run_recipe("sac", f"sampler={sampler}", f"hydra.run.dir={run_dir}", timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("sac: error: "), out.stderr[-2000:]
    assert f"{cls} has no density" in lines[0] and "sampler=stein" in lines[0]
    assert "Traceback" not in out.stderr and not run_dir.exists()
