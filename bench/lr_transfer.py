"""Does the best learning rate transfer across widths? The loss grid, learning rates x
widths, under the standard parametrisation and under muP (issue 12, item 6).

Every run trains the same number of tokens on the same data (behaviour cloning on a
pointmass dataset; generate one with ``roboscale data generate --env pointmass
--episodes 400 --quality noise:0.02 --out DIR``) at a fixed depth, so only the width
changes. For each parametrisation it prints the final validation loss per width and
learning rate, the best learning rate per width, and the verdict: the best learning
rate must not move by more than one grid step across widths. The learning rate is
the peak AdamW rate (under muP: of vector-like parameters; hidden matrices get it x
base_width / d_model). Run: python bench/lr_transfer.py --data DIR

Measured (2026-11-30, pointmass 400 episodes noise:0.02, defaults, one seed, 2188 s on
a shared 2-core machine), best learning rate per width 8/16/32/64/128 over the grid
1e-3..1e-1: muP 1e-2/1e-2/1e-2/3e-2/1e-2 (moves 1 step: holds); standard
1e-2/3e-2/3e-3/3e-3/3e-3 (moves 2 steps: fails). Best losses: muP 3.326/3.208/3.206/
3.184/3.235, standard 3.395/3.313/3.364/3.167/3.078 (at 200 steps the wide standard
models reach lower loss than muP's).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from roboscale.files import write_json_atomic
from roboscale.train import TrainConfig, train_batch


def parse_list(text: str, kind=float) -> list:
    return [kind(item) for item in text.split(",") if item]


def grid_losses(args: argparse.Namespace, parametrization: str) -> dict[int, list[float]]:
    """Final validation loss (mean over seeds; inf if a run diverged) per width, one per learning rate."""
    grid: dict[int, list[float]] = {}
    for width in args.widths:
        row = []
        for lr in args.lrs:
            configs = [
                TrainConfig(
                    data=args.data,
                    task="bc",
                    tokenizer=args.tokenizer,
                    d_model=width,
                    n_layer=args.layers,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    lr=lr,
                    seed=seed,
                    threads=1,
                    eval_points=1,
                    eval_windows=args.eval_windows,
                    checkpoint_seconds=1e9,
                    parametrization=parametrization,
                    base_width=args.base_width,
                )
                for seed in args.seeds
            ]
            outs = [Path(args.out) / parametrization / f"d{width}-lr{lr:g}-s{seed}" for seed in args.seeds]
            records = train_batch(configs, outs)
            losses = [record["final"]["val_loss"] for record in records]
            finite = all(loss is not None and math.isfinite(loss) for loss in losses)
            row.append(sum(losses) / len(losses) if finite else math.inf)
        grid[width] = row
        print(f"  {parametrization} d{width}: " + " ".join(f"{loss:.4f}" for loss in row), flush=True)
    return grid


def best_steps(grid: dict[int, list[float]]) -> dict[int, int]:
    """Index of the lowest-loss learning rate per width."""
    return {width: min(range(len(row)), key=row.__getitem__) for width, row in grid.items()}


def transfer_verdict(best: dict[int, int]) -> tuple[int, bool]:
    """How many grid steps the best learning rate moves across widths, and whether that
    is at most one (the acceptance criterion)."""
    spread = max(best.values()) - min(best.values())
    return spread, spread <= 1


def print_grid(parametrization: str, lrs: list[float], grid: dict[int, list[float]]) -> dict:
    best = best_steps(grid)
    spread, holds = transfer_verdict(best)
    print(f"\n{parametrization}: final validation loss (nats per action dimension)")
    print("d_model  " + "  ".join(f"{lr:>8.1e}" for lr in lrs) + "   best lr")
    for width, row in grid.items():
        cells = "  ".join(f"{loss:8.4f}" + ("*" if i == best[width] else " ") for i, loss in enumerate(row))
        print(f"{width:>7}  {cells}  {lrs[best[width]]:.1e}")
    verdict = "holds" if holds else "fails"
    print(f"best learning rate moves {spread} grid step(s) across widths: transfer {verdict} (criterion: <= 1)")
    return {
        "grid": {str(width): row for width, row in grid.items()},
        "best_lr": {str(width): lrs[index] for width, index in best.items()},
        "grid_steps_moved": spread,
        "transfers": holds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="bench-data/lr-transfer/pointmass-n02")
    parser.add_argument("--out", default="bench-data/lr-transfer/runs")
    parser.add_argument("--tokenizer", default="uniform:256@1")
    parser.add_argument("--widths", type=lambda t: parse_list(t, int), default=[8, 16, 32, 64, 128])
    parser.add_argument("--lrs", type=parse_list, default=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1])
    parser.add_argument("--parametrizations", type=lambda t: parse_list(t, str), default=["standard", "mup"])
    parser.add_argument("--base-width", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2, help="Fixed depth, so that only the width changes.")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-windows", type=int, default=512)
    parser.add_argument("--seeds", type=lambda t: parse_list(t, int), default=[0])
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"bc on {args.data}, {args.tokenizer}, {args.layers} layers, {args.steps} steps x {args.batch_size} sequences"
        f" (same tokens for every run), seeds {args.seeds}, muP base width {args.base_width}"
    )
    results = {}
    for parametrization in args.parametrizations:
        grid = grid_losses(args, parametrization)
        results[parametrization] = print_grid(parametrization, args.lrs, grid)
    summary = {"settings": dict(vars(args)), "results": results}
    summary["seconds"] = time.perf_counter() - started
    write_json_atomic(Path(args.out) / "lr_transfer.json", summary)
    print(f"\n{summary['seconds']:.0f} s; wrote {Path(args.out) / 'lr_transfer.json'}")


if __name__ == "__main__":
    main()
