"""A run folder, read and cross-checked (no torch, no weights loaded).

Everything here reads JSON only, so a bad run folder is refused at once, before
any model is loaded. Each check names the problem and the fix.

The files of a run folder (written by :func:`roboscale.train.train`) vouch for
each other: ``record.json`` repeats ``config.json`` and the tokenizer shapes of
``tokenizers.json``, and the checkpoint's ``state.json`` holds the dataset
fingerprint and the learning curve up to the checkpoint, which must agree with
the record's. A folder that mixes files of two runs (another task, another
tokenizer, a checkpoint copied in) fails one of these checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roboscale.errors import BadInputError
from roboscale.files import read_json_object
from roboscale.runfolder.layout import CHECKPOINT_STATE, MODEL_WEIGHTS, RunLayout
from roboscale.tokenize import Tokenizer, TokenizerSpec

READABLE_CHECKPOINT = (MODEL_WEIGHTS, CHECKPOINT_STATE)
"""What a checkpoint needs to be evaluated (the optimizer state is for resuming only)."""


@dataclass(frozen=True)
class RunFolder:
    """The files of a training run, read and checked against each other (no weights loaded)."""

    path: Path
    config: dict
    """config.json: the TrainConfig."""
    record: dict
    """record.json: the run record."""
    tokenizers: dict
    """tokenizers.json: ``state`` and ``action`` Tokenizer dicts."""
    checkpoint_state: dict
    """checkpoint/state.json: step, learning curve, dataset fingerprint."""

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def checkpoint_step(self) -> int:
        return int(self.checkpoint_state.get("step", 0))

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

    @property
    def layout(self) -> RunLayout:
        return RunLayout.of(self.path)

    @property
    def checkpoint(self) -> Path:
        return self.layout.checkpoint


def read_run_folder(path: str | Path) -> RunFolder:
    """Read and cross-check a run folder; BadInputError for anything that cannot be evaluated."""
    path = Path(path)
    layout = RunLayout.of(path)
    if not path.is_dir():
        raise BadInputError(f"run folder {path} not found: pass the --out folder of a `roboscale train` run")
    if not layout.config.exists():
        raise BadInputError(f"{path} is not a run folder (no config.json): pass the --out folder of `roboscale train`")
    missing = [name for name in READABLE_CHECKPOINT if not (layout.checkpoint / name).exists()]
    if missing:
        raise BadInputError(
            f"{path} has no checkpoint (checkpoint/{missing[0]} is missing): train the run first, "
            f"or resume it with the same `roboscale train ... --out {path}` command"
        )
    run = RunFolder(
        path=path,
        config=read_json(layout.config),
        record=read_json(layout.record),
        tokenizers=read_json(layout.tokenizers),
        checkpoint_state=read_json(layout.checkpoint_state),
    )
    _check_record(run)
    _check_tokenizers(run)
    _check_checkpoint_state(run)
    return run


def read_json(path: Path) -> dict:
    """A run file's JSON object; BadInputError when it is missing or damaged."""
    return read_json_object(
        path, "the run folder is incomplete; train the run again", "the run folder is damaged; train again"
    )


def _mixed(run: RunFolder, detail: str) -> BadInputError:
    return BadInputError(f"{run.path}: {detail}: the folder mixes files of two runs; train the run again")


def _check_record(run: RunFolder) -> None:
    if run.record.get("config") != run.config:
        changed = sorted(
            key
            for key in set(run.config) | set(run.record.get("config") or {})
            if run.config.get(key) != (run.record.get("config") or {}).get(key)
        )
        raise _mixed(run, f"record.json and config.json disagree on {', '.join(changed) or 'the configuration'}")
    if run.task not in ("bc", "wm"):
        raise BadInputError(f"{run.path}/config.json: task {run.task!r} is neither bc nor wm")
    if not isinstance(run.record.get("model"), dict):
        raise _mixed(run, "record.json has no model shape")


def _expected_specs(config: dict) -> dict[str, TokenizerSpec]:
    """The tokenizer specs a config asks for (actions default to the state kind and bins)."""
    state = TokenizerSpec.parse(config["tokenizer"])
    action_text = config.get("action_tokenizer")
    action = TokenizerSpec.parse(action_text) if action_text else TokenizerSpec(state.kind, state.bins, None)
    return {"state": state, "action": action}


def _check_tokenizers(run: RunFolder) -> None:
    for stream, spec in _expected_specs(run.config).items():
        saved = run.tokenizers.get(stream)
        if not isinstance(saved, dict):
            raise _mixed(run, f"tokenizers.json has no {stream} tokenizer")
        saved_spec = TokenizerSpec(saved.get("kind"), int(saved.get("bins", 0)), None)
        tokens_differ = spec.tokens is not None and int(saved.get("tokens", 0)) != spec.tokens
        if (saved_spec.kind, saved_spec.bins) != (spec.kind, spec.bins) or tokens_differ:
            raise _mixed(
                run,
                f"tokenizers.json holds a {saved_spec}@{saved.get('tokens')} {stream} tokenizer but config.json "
                f"asks for {spec}",
            )
        recorded = (run.record.get("tokenizers") or {}).get(stream) or {}
        for key in ("kind", "bins", "tokens"):
            if key in recorded and recorded[key] != saved.get(key):
                raise _mixed(run, f"tokenizers.json and record.json disagree on the {stream} tokenizer's {key}")


def _check_checkpoint_state(run: RunFolder) -> None:
    state, record = run.checkpoint_state, run.record
    fingerprint = (record.get("dataset") or {}).get("fingerprint")
    if fingerprint and state.get("dataset_fingerprint") not in (None, fingerprint):
        raise _mixed(run, "the checkpoint was trained on another dataset than record.json names")
    # The checkpoint's learning curve is a prefix of the record's (the record is
    # written at every evaluation, the checkpoint at most every checkpoint_seconds).
    saved = [(point.get("step"), point.get("val_loss")) for point in state.get("curve", [])]
    recorded = [(point.get("step"), point.get("val_loss")) for point in record.get("learning_curve", [])]
    if saved != recorded[: len(saved)]:
        raise _mixed(
            run, "the checkpoint's learning curve differs from record.json's (the checkpoint is another run's)"
        )


def tokenizer_payload(state: Tokenizer, action: Tokenizer) -> dict:
    """The contents of tokenizers.json."""
    return {"state": state.to_dict(), "action": action.to_dict()}


def tokenizers_from_payload(payload: dict) -> tuple[Tokenizer, Tokenizer]:
    """The (state, action) tokenizers saved in tokenizers.json."""
    return Tokenizer.from_dict(payload["state"]), Tokenizer.from_dict(payload["action"])
