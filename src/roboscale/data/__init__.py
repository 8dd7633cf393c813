"""Demonstration data: generate with scripted experts, import, store as LeRobot v3 folders.

from roboscale.data import GenerationSpec, Quality, generate, open_dataset

report = generate(GenerationSpec(env="metaworld", tasks="mt10", episodes=500), "data/mt10", workers=2)
dataset = open_dataset("data/mt10")
frames = dataset.frames(["observation.state", "action"], split="train")
"""

from roboscale.data.dataset import Dataset, open_dataset
from roboscale.data.derive import SourceTake, derive_dataset
from roboscale.data.envs import get_family
from roboscale.data.generate import GenerationReport, GenerationSpec, generate
from roboscale.data.importers import import_lerobot, import_minari
from roboscale.data.quality import Quality

__all__ = [
    "Dataset",
    "GenerationReport",
    "GenerationSpec",
    "Quality",
    "SourceTake",
    "derive_dataset",
    "generate",
    "get_family",
    "import_lerobot",
    "import_minari",
    "open_dataset",
]
