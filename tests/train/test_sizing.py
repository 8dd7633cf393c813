"""Run sizing, shared by the trainer and the study planner, and the rule for stacking runs."""

import dataclasses

import pytest

from roboscale.train import TrainConfig, plan_run, prepare_data, seconds_per_step, size_model, size_run, stack_key


def config(dataset, **changes):
    base = dict(data=str(dataset), task="bc", tokenizer="uniform:32", d_model=16, steps=40, batch_size=16, threads=1)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data(pointmass_dataset):
    """The pointmass data tokenized as every config of this file asks (uniform:32, bc)."""
    return prepare_data(config(pointmass_dataset))[0]


def test_stack_key_ignores_the_seed_and_only_the_seed():
    base = TrainConfig(data="data", flops=1e9)
    assert stack_key(dataclasses.replace(base, seed=7)) == stack_key(base)
    other_values = {str: "other", int: 3, float: 0.5}
    changed = []
    for field in dataclasses.fields(TrainConfig):
        if field.name == "seed":
            continue
        current = getattr(base, field.name)
        kind = type(current) if current is not None else {"action_tokenizer": str}.get(field.name, int)
        value = other_values[kind] if other_values[kind] != current else other_values[kind] * 2
        if stack_key(dataclasses.replace(base, **{field.name: value})) != stack_key(base):
            changed.append(field.name)
    assert len(changed) == len(dataclasses.fields(TrainConfig)) - 1  # every other setting splits a stack
    assert {stack_key(base), stack_key(dataclasses.replace(base, seed=1))} == {stack_key(base)}  # hashable


def test_the_planner_and_the_trainer_size_a_run_alike(pointmass_dataset, data):
    budget = config(pointmass_dataset, steps=None, flops=3e9)
    planned = size_run(budget, data, size_model(budget, data))
    trained = plan_run(budget, prepared=(data, "fingerprint"))
    assert planned == trained.size and planned.steps == 68  # 3e9 / 34406.4 FLOPs per token // 1280 tokens per step
    assert planned.tokens == 68 * 1280
    # a budget below one step sizes to 0 steps (the planner leaves it out; the trainer refuses it)
    assert size_run(config(pointmass_dataset, steps=None, flops=1e7), data).steps == 0


def test_step_time_is_measured_with_the_trainers_step(pointmass_dataset, data):
    settings = config(pointmass_dataset)
    one = seconds_per_step(settings, data)
    assert 0 < one < 5
    assert seconds_per_step(settings, data, n_models=3) > 0
