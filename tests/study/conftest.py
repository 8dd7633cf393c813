import pytest

from roboscale.study import study_from_dict


def tiny_study_dict(out, **sweep_changes) -> dict:
    """A study small enough for tests: pointmass, bc, three budgets x three sizes."""
    sweep = {
        "tasks": ["bc"],
        "tokenizers": ["uniform:32"],
        "widths": [8, 16, 24],
        "budgets": [3e9, 6e9, 1.2e10],
        "sizes_per_budget": 3,
        "max_epochs": 100.0,
        "min_steps": 10,
    }
    sweep.update(sweep_changes)
    return {
        "name": "tiny",
        "out": str(out),
        "data": {"generate": {"env": "pointmass", "episodes": 120, "quality": "noise:0.1", "seed": 0}},
        "sweep": sweep,
        "train": {"eval_points": 6, "eval_windows": 128, "batch_size": 32},
        "executor": {"workers": 2, "threads": 1},
    }


@pytest.fixture
def make_study(tmp_path):
    """make_study(name="study", **sweep_changes) -> a tiny StudySpec in tmp_path / name."""

    def make(name: str = "study", **sweep_changes):
        return study_from_dict(tiny_study_dict(tmp_path / name, **sweep_changes))

    return make


@pytest.fixture
def tiny_study_toml(tmp_path):
    """Write a tiny study file; returns its path."""

    def write(name: str = "study", **sweep_changes):
        raw = tiny_study_dict(tmp_path / name, **sweep_changes)
        lines = [
            f'name = "{raw["name"]}"',
            f'out = "{raw["out"]}"',
            "[data]",
            'generate = { env = "pointmass", episodes = 120, quality = "noise:0.1", seed = 0 }',
        ]
        for section in ("sweep", "train", "executor"):
            lines.append(f"[{section}]")
            for key, value in raw[section].items():
                lines.append(f"{key} = {_toml(value)}")
        path = tmp_path / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


def _toml(value):
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
