"""Run folders that cannot be evaluated are refused before any rollout, with the fix named."""

import json
import shutil

import pytest

from roboscale.errors import BadInputError
from roboscale.evaluate import evaluate_policy, evaluate_world_model
from roboscale.evaluate.plan import plan_policy_evaluation


def copy_run(run, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def test_missing_folder_and_missing_checkpoint(trained_policy, tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        evaluate_policy(tmp_path / "nowhere")
    run = copy_run(trained_policy, tmp_path)
    shutil.rmtree(run / "checkpoint")
    with pytest.raises(BadInputError, match="has no checkpoint .* train the run first"):
        evaluate_policy(run)


def test_the_other_task_is_refused(trained_policy, world_model):
    with pytest.raises(BadInputError, match="world-model run .* needs a behaviour-cloning run"):
        evaluate_policy(world_model)
    with pytest.raises(BadInputError, match="behaviour-cloning run .* needs a world-model run"):
        evaluate_world_model(trained_policy)


def test_files_of_two_runs_in_one_folder_are_refused(trained_policy, untrained_policy, binned_policy, tmp_path):
    mixed = copy_run(trained_policy, tmp_path, "tokenizers")
    shutil.copy(binned_policy / "tokenizers.json", mixed / "tokenizers.json")
    with pytest.raises(BadInputError, match="uniform:32@8 state tokenizer but config.json asks for continuous"):
        evaluate_policy(mixed)
    # Same shapes, other weights: the checkpoint's learning curve gives it away.
    swapped = copy_run(trained_policy, tmp_path, "checkpoint")
    shutil.rmtree(swapped / "checkpoint")
    shutil.copytree(untrained_policy / "checkpoint", swapped / "checkpoint")
    with pytest.raises(BadInputError, match="checkpoint is another run's"):
        evaluate_policy(swapped)


def test_another_dataset_or_simulator_is_refused(trained_policy, long_dataset, tmp_path):
    with pytest.raises(BadInputError, match="is not the dataset .* was trained on"):
        evaluate_policy(trained_policy, data=long_dataset)
    with pytest.raises(BadInputError, match="generated in pointmass.*drop --env"):
        evaluate_policy(trained_policy, env="metaworld")
    with pytest.raises(BadInputError, match="push are not in the run's dataset"):
        evaluate_policy(trained_policy, tasks="push")
    with pytest.raises(BadInputError, match="has no held-out tasks"):
        evaluate_policy(trained_policy, heldout_tasks=True)
    moved = copy_run(trained_policy, tmp_path, "moved")
    record = json.loads((moved / "record.json").read_text())
    record["dataset"]["path"] = str(tmp_path / "gone")
    config = {**record["config"], "data": str(tmp_path / "gone")}
    record["config"] = config
    (moved / "record.json").write_text(json.dumps(record))
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInputError, match="is not found: pass the dataset it was trained on with --data"):
        evaluate_policy(moved)


@pytest.mark.parametrize("changes", [{"episodes": 0}, {"envs": 0}, {"workers": 0}, {"max_steps": 0}])
def test_counts_below_one_are_refused(trained_policy, changes):
    with pytest.raises(BadInputError, match="must be >= 1"):
        evaluate_policy(trained_policy, write=False, **changes)


def test_sampling_continuous_actions_falls_back_to_the_regression_output(trained_policy, binned_policy):
    plan = plan_policy_evaluation(trained_policy, sample=True, episodes=2)
    assert not plan.sample and plan.notes == [
        "--sample has no effect: the run's actions are continuous, so the regression output is used"
    ]
    assert plan_policy_evaluation(binned_policy, sample=True, episodes=2).sample
