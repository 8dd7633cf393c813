"""Benchmark: K same-shape models trained as one computation against K runs one at a time.

Side by side in one process, one thread, the same total work: for each width and
each K, one ``train_batch`` run of K models (seeds 0..K-1) against K ``train`` runs
of the same configs in sequence (the peer). Throughput is aggregate model FLOP/s
over training steps only (the records' ``train_seconds``; each model's FLOPs are
counted exactly, never the stack as one model). The single-model rate is the
median over the K separate runs. For every cell the script also checks learning-
curve fidelity: the largest relative difference between a stacked model's curve
and its separate run.

Data: the demo's shape, Meta-World MT10 with 39-dim states and 256 uniform bins
(344 tokens per sequence), batch 32. Run:
    python bench/batched_speed.py [--widths 8 16 32 64 128] [--ks 1 2 4 8 16] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from roboscale.data import GenerationSpec, Quality, generate
from roboscale.train import TrainConfig, train, train_batch


def dataset(folder: Path) -> Path:
    spec = GenerationSpec(env="metaworld", tasks="mt10", episodes=60, quality=Quality(action_noise=0.1), seed=0)
    return generate(spec, folder / "mt10", workers=2).out


def configs(data: Path, tokenizer: str, d_model: int, k: int, steps: int) -> list[TrainConfig]:
    return [
        TrainConfig(
            data=str(data),
            task="bc",
            tokenizer=tokenizer,
            d_model=d_model,
            steps=steps,
            batch_size=32,
            threads=1,
            eval_points=2,
            eval_windows=64,
            checkpoint_seconds=1e9,
            seed=seed,
        )
        for seed in range(k)
    ]


def aggregate_rate(records: list[dict]) -> float:
    """Model FLOP/s of a set of records trained together (one clock)."""
    return sum(r["C"] for r in records) / records[0]["train_seconds"]


def curve_difference(a: list[dict], b: list[dict]) -> float:
    worst = 0.0
    for one, other in zip(a, b, strict=True):
        for p, q in zip(one["learning_curve"], other["learning_curve"], strict=True):
            worst = max(worst, abs(p["val_loss"] - q["val_loss"]) / abs(q["val_loss"]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--tokenizers",
        nargs="+",
        default=["uniform:256", "uniform:256@1", "continuous"],
        help="uniform:256 is the demo's (one token per dimension, 344 tokens per sequence); "
        "uniform:256@1 and continuous put a whole observation in one token (40 and 16 tokens)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = dataset(root)
        header = f"{'tokenizer':>14} {'d_model':>7} {'K':>3} {'single GFLOP/s':>15} {'stacked GFLOP/s':>16}"
        print(f"{header} {'speedup':>8} {'curve diff':>11}")
        for tokenizer, width, k in ((t, w, k) for t in args.tokenizers for w in args.widths for k in args.ks):
            cell = root / f"{tokenizer.replace(':', '').replace('@', 'x')}-d{width}-k{k}"
            group = configs(data, tokenizer, width, k, args.steps)
            stacked = train_batch(group, [cell / f"stacked-{c.seed}" for c in group])
            alone = [train(c, cell / f"alone-{c.seed}") for c in group]
            single = statistics.median(r["C"] / r["train_seconds"] for r in alone)
            together = aggregate_rate(stacked)
            difference = curve_difference(stacked, alone)
            print(
                f"{tokenizer:>14} {width:>7} {k:>3} {single / 1e9:>15.2f} {together / 1e9:>16.2f} "
                f"{together / single:>7.2f}x {difference:>11.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
