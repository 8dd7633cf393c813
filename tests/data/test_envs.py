import subprocess
import sys

import numpy as np
import pytest

from roboscale.data.envs import EnvConformanceError, check_env, get_family
from roboscale.errors import BadInputError


@pytest.mark.parametrize("task", ["reach", "push"])
def test_pointmass_passes_the_conformance_checks(task):
    check_env(get_family("pointmass").make(task), config_seeds=(0, 1, 2))


@pytest.mark.parametrize("task, floor", [("reach", 1.0), ("push", 0.95)])
def test_pointmass_expert_solves_its_tasks(task, floor):
    env = get_family("pointmass").make(task)
    solved = []
    for seed in range(100):
        observation = env.reset(seed)
        for _ in range(env.spec.max_steps):
            observation, _, _, _, info = env.step(env.expert_action(observation))
            if info["success"]:
                break
        solved.append(info["success"])
    assert np.mean(solved) >= floor


def test_unknown_names_are_clear_errors():
    with pytest.raises(BadInputError, match="unknown environment 'mujoco-soup'"):
        get_family("mujoco-soup")
    with pytest.raises(BadInputError, match="no task"):
        get_family("pointmass").task_names("reach,fly")


def test_metaworld_task_sets_and_conformance():
    family = get_family("metaworld")
    assert len(family.task_names("mt10")) == 10
    assert len(family.task_names("mt50")) == 50
    assert family.task_names("push,reach-v3") == ["push-v3", "reach-v3"]
    with pytest.raises(BadInputError, match="unknown Meta-World task"):
        family.task_names("push-v2")
    env = family.make("push-v3")
    assert env.spec.state_dim == 39 and env.spec.action_dim == 4
    check_env(env, config_seeds=(0, 1), steps=10)


def test_metaworld_leaves_the_global_numpy_state_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    env = get_family("metaworld").make("reach-v3")
    env.reset(42)
    assert np.random.rand() == expected


BROKEN_EXPERT = """
import numpy as np
from roboscale.data.envs import EnvConformanceError, check_env, get_family
env = get_family("pointmass").make("reach")
env.expert_action = lambda observation: np.zeros(3, dtype=np.float32)  # one value too many
try:
    check_env(env)
except EnvConformanceError as error:
    print(error)
"""


def test_conformance_checks_hold_under_python_O():
    # bare asserts vanish under -O; the checks must not
    result = subprocess.run(
        [sys.executable, "-O", "-c", BROKEN_EXPERT], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "expert action shape (3,), not (2,)"


def test_a_nondeterministic_reset_fails_the_checks():
    env = get_family("pointmass").make("reach")
    reset, calls = env.reset, []

    def drifting_reset(config_seed):
        calls.append(config_seed)
        return reset(config_seed + len(calls))

    env.reset = drifting_reset
    with pytest.raises(EnvConformanceError, match="config_seed 0 is not deterministic"):
        check_env(env)
