"""The noise budget at the demo's settings: validation-estimator noise against seed noise.

Trains the demo's IsoFLOP points at one small budget (Meta-World MT10, 1,200 noisy-expert
episodes, uniform:256, context 8, batch 32; widths 8 and 16 at 1e11 FLOPs) with several
seeds, then measures every run's loss once on up to 4,096 evenly spread validation
windows, window by window. From those per-window losses, for each window count (an
evenly spread subset, as the trainer evaluates on), it prints the episode-clustered
standard error of the validation loss, its paired part (the noise of a difference
between two runs on the same windows), the standard deviation of the final loss across
seeds, their ratios, and the fewest windows whose SE is at most a quarter of the seed
SD. It also prints the evaluation's share of the training FLOPs at each window count.

Run (16 runs: about 45 minutes on a shared 2-core machine, plus 10 to generate the dataset):
    nice -n 10 python bench/noise_budget.py [--out /work/exp/noise-data]
Runs and the dataset are cached under --out: a second run only re-measures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from roboscale.data import GenerationSpec, Quality, generate
from roboscale.evaluate.policy import load_model
from roboscale.fit.noise import TARGET_RATIO
from roboscale.runfolder import read_run_folder
from roboscale.train import TrainConfig, train_batch
from roboscale.train.step import fixed_windows
from roboscale.train.trainer import prepare_data
from roboscale.train.validation import clustered_mean, window_losses

WINDOW_COUNTS = (64, 128, 256, 512, 1024, 2048)
"""Validation windows per evaluation to measure, and the largest set (--max-windows)."""


def demo_dataset(root: Path) -> Path:
    """The demo's dataset (study/demo.py's [data] generate table), generated once into ``root``."""
    out = root / "mt10-1200"
    if not (out / "meta" / "info.json").exists():
        spec = GenerationSpec(env="metaworld", tasks="mt10", episodes=1200, quality=Quality(action_noise=0.1), seed=0)
        generate(spec, out, workers=1)
    return out


def demo_config(data: Path, task: str, width: int, budget: float, seed: int, eval_windows: int) -> TrainConfig:
    """A run with the demo's training settings (study/demo.py [train])."""
    return TrainConfig(
        data=str(data),
        task=task,
        tokenizer="uniform:256",
        d_model=width,
        flops=budget,
        batch_size=32,
        context_steps=8,
        eval_points=10,
        eval_windows=eval_windows,
        seed=seed,
        threads=1,
        checkpoint_seconds=1e9,
    )


def subset(count: int, total: int) -> np.ndarray:
    """Positions of the evenly spread ``count`` of ``total`` windows (train.step.fixed_windows)."""
    if count >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, count).astype(np.int64)


def measure_point(configs: list[TrainConfig], runs: Path, prepared, max_windows: int) -> dict:
    """Train one IsoFLOP point's seeds (cached) and measure each run's per-window losses
    on ``max_windows`` evenly spread validation windows (all, when there are fewer).
    Returns the window sums and dims (seeds, windows), the recorded finals and the
    training FLOPs per token."""
    data, _ = prepared
    outs = [runs / f"{c.task}-d{c.d_model}-s{c.seed}" for c in configs]
    records = train_batch(configs, outs)
    starts = fixed_windows(data.windows("validation"), max_windows)
    sums, dims = [], []
    for out in outs:
        loaded = load_model(read_run_folder(out), "cpu")
        window_sum, window_dims = window_losses(loaded.model, data, starts, configs[0].task, 256, loaded.device)
        sums.append(window_sum[0])
        dims.append(window_dims[0])
    return {
        "sums": np.stack(sums),
        "dims": np.stack(dims),
        "clusters": data.episode_end[starts],
        "recorded": [r["final"] for r in records],
        "flops_per_token": records[0]["flops_per_token"]["exact"],
        "C": records[0]["C"],
        "evaluations": len(records[0]["learning_curve"]),
        "tokens_per_window": records[0]["model"]["context_steps"] * (data.states.shape[1] + data.actions.shape[1]),
    }


def report_point(task: str, width: int, point: dict, default_windows: int) -> dict:
    """Print one point's table; returns its SE by window count and its seed SD."""
    total = point["sums"].shape[1]
    counts = [c for c in WINDOW_COUNTS if c < total] + [total]
    full_loss, _ = clustered_mean(point["sums"], point["dims"], point["clusters"])
    seed_sd = float(np.std(full_loss, ddof=1))
    recorded = np.array([final["val_loss"] for final in point["recorded"]])
    print(
        f"\n{task} d_model {width}: {len(full_loss)} seeds, loss on {total} windows "
        f"{full_loss.mean():.4f}, seed SD {seed_sd:.4f} (at {default_windows} windows: "
        f"{np.std(recorded, ddof=1):.4f}), {len(np.unique(point['clusters']))} validation episodes"
    )
    print("  windows   SE median   SE / seed SD   paired SE   paired / seed SD   eval FLOPs / training FLOPs")
    errors, paired = {}, {}
    for count in counts:
        chosen = subset(count, total)
        sums, dims, clusters = point["sums"][:, chosen], point["dims"][:, chosen], point["clusters"][chosen]
        _, se = clustered_mean(sums, dims, clusters)
        errors[count] = float(np.median(se))
        paired[count] = paired_se(sums, dims, clusters)
        # forward passes only: a third of the training FLOPs per token
        eval_flops = point["evaluations"] * count * point["tokens_per_window"] * point["flops_per_token"] / 3
        marker = " <- default" if count == default_windows else ""
        print(
            f"  {count:>7}   {errors[count]:.4f}      {errors[count] / seed_sd:6.3f}"
            f"         {paired[count]:.4f}      {paired[count] / seed_sd:6.3f}"
            f"             {eval_flops / point['C']:8.3%}{marker}"
        )
    return {"errors": errors, "paired": paired, "seed_sd": seed_sd}


def paired_se(sums: np.ndarray, dims: np.ndarray, clusters: np.ndarray) -> float:
    """The part of the estimator noise that is not shared by models measured on the same
    windows: the clustered SE of the loss difference of consecutive seeds, over sqrt(2)
    (median over the pairs). Differences between runs, which is what a fit compares,
    carry only this part; the shared part moves every run's loss together."""
    _, se = clustered_mean(sums[1:] - sums[:-1], dims[1:], clusters)
    return float(np.median(se)) / np.sqrt(2.0)


def needed(errors: dict[int, float], seed_sd: float) -> str:
    reached = [count for count in sorted(errors) if errors[count] <= TARGET_RATIO * seed_sd]
    return str(reached[0]) if reached else f"> {max(errors)} (more episodes)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-data/noise-budget"))
    parser.add_argument("--data", type=Path, help="another dataset folder (default: the demo's, under --out)")
    parser.add_argument("--tasks", default="bc,wm")
    parser.add_argument("--widths", default="8,16")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--budget", type=float, default=1e11)
    parser.add_argument("--max-windows", type=int, default=4096, help="the largest window set measured")
    parser.add_argument("--eval-windows", type=int, default=256, help="the window count the runs evaluate on")
    args = parser.parse_args()
    data = args.data or demo_dataset(args.out)
    widths = [int(w) for w in args.widths.split(",")]
    print(f"noise budget: {data.name}, uniform:256, context 8, batch 32, {args.budget:.3g} FLOPs, {args.seeds} seeds")
    summary = []
    for task in args.tasks.split(","):
        prepared = None
        results = []
        for width in widths:
            configs = [
                demo_config(data, task, width, args.budget, seed, args.eval_windows) for seed in range(args.seeds)
            ]
            prepared = prepared or prepare_data(configs[0])
            point = measure_point(configs, args.out / "runs", prepared, args.max_windows)
            results.append(report_point(task, width, point, args.eval_windows))
        counts = sorted(set.intersection(*(set(r["errors"]) for r in results)))
        errors = {count: float(np.median([r["errors"][count] for r in results])) for count in counts}
        paired = {count: float(np.median([r["paired"][count] for r in results])) for count in counts}
        seed_sd = float(np.median([r["seed_sd"] for r in results]))
        summary.append((task, errors, paired, seed_sd))
    print(f"\nper task (medians over widths {args.widths}); target: SE <= seed SD x {TARGET_RATIO}")
    print("task   SE at default   seed SD   ratio   windows needed   paired SE at default   ratio   windows needed")
    for task, errors, paired, seed_sd in summary:
        at_default = errors.get(args.eval_windows, float("nan"))
        paired_default = paired.get(args.eval_windows, float("nan"))
        print(
            f"{task:<5}  {at_default:.4f} ({args.eval_windows:>4})   {seed_sd:.4f}   {at_default / seed_sd:.3f}"
            f"   {needed(errors, seed_sd):<15}  {paired_default:.4f}                 {paired_default / seed_sd:.3f}"
            f"   {needed(paired, seed_sd)}"
        )


if __name__ == "__main__":
    main()
