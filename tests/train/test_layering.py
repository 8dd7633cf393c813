"""Who may import training code: the planner sizes runs through roboscale.train (no model
code), evaluation reads run folders through roboscale.runfolder (no training code), and
roboscale.runfolder sits below both. Checked on the source's import statements."""

import ast
from pathlib import Path

import roboscale

SOURCE = Path(roboscale.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (``from roboscale import train`` counts as roboscale.train)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def forbidden(path: Path, package: str) -> list[str]:
    return sorted(m for m in imported_modules(path) if m == package or m.startswith(package + "."))


def test_the_checker_sees_imports(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("def f():\n    from roboscale import models\n\nimport roboscale.train.sizing as s\n")
    assert forbidden(source, "roboscale.models") == ["roboscale.models"]
    assert forbidden(source, "roboscale.train") == ["roboscale.train.sizing"]


def test_the_planner_imports_no_model_code():
    plan = SOURCE / "study" / "plan.py"
    assert "roboscale.train" in imported_modules(plan)  # it sizes runs through the trainer's rule
    assert forbidden(plan, "roboscale.models") == []
    assert forbidden(plan, "torch") == []


def test_evaluation_imports_no_training_code():
    files = sorted((SOURCE / "evaluate").glob("*.py"))
    assert len(files) >= 8
    assert {str(f.name): forbidden(f, "roboscale.train") for f in files} == {str(f.name): [] for f in files}
    assert forbidden(SOURCE / "evaluate" / "policy.py", "roboscale.runfolder") != []  # checkpoints come from there


def test_the_run_folder_module_sits_below_training_and_evaluation():
    for path in sorted((SOURCE / "runfolder").glob("*.py")):
        assert forbidden(path, "roboscale.train") == forbidden(path, "roboscale.evaluate") == [], path.name
