"""The warning for a run of too few optimiser steps, and the length it proposes."""

import pytest

from roboscale.train import TrainConfig, prepare_data, size_run
from roboscale.train.trainer import MIN_STEPS, few_steps_warning


@pytest.fixture(scope="module")
def prepared(pointmass_dataset):
    """The pointmass data tokenized once for a bc model (d_model 16, uniform:32)."""
    return prepare_data(TrainConfig(data=str(pointmass_dataset), tokenizer="uniform:32", steps=1))[0]


def sized(data, **length):
    """A d_model 16 bc config of the given length, and its size on ``data`` (sizing reads no files)."""
    config = TrainConfig(data="tokenized", tokenizer="uniform:32", d_model=16, **length)
    return config, size_run(config, data)


def test_the_warning_starts_below_min_steps(prepared):
    for steps, warned in ((1, True), (MIN_STEPS - 1, True), (MIN_STEPS, False), (1000, False)):
        config, size = sized(prepared, steps=steps)
        assert (few_steps_warning(config, size) is not None) == warned, steps


@pytest.mark.parametrize("length", ["flops", "tokens", "tokens_per_param"])
def test_the_proposed_length_buys_min_steps_and_little_more(prepared, length):
    """The warning names the value of the run's own length option that gives MIN_STEPS
    steps (rounded up to 3 significant digits): trained with it, the run is not warned."""
    _, one_step = sized(prepared, steps=1)
    per_step = {
        "flops": one_step.tokens_per_step * one_step.model.flops_per_token["exact"],
        "tokens": one_step.tokens_per_step,
        "tokens_per_param": one_step.tokens_per_step / one_step.model.params["total"],
    }[length]
    config, size = sized(prepared, **{length: 5.5 * per_step})
    assert size.steps == 5
    message = few_steps_warning(config, size)
    flag = "--" + length.replace("_", "-")
    proposed = float(message.split(f"raise {flag} to ")[1].split(",")[0])
    config, size = sized(prepared, **{length: proposed})
    assert size.steps == MIN_STEPS and few_steps_warning(config, size) is None
    assert proposed <= MIN_STEPS * per_step * 1.01
    assert ("smaller --d-model" in message) == (length != "tokens")  # a smaller model takes more steps of these
