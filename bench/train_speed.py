"""Benchmark: training throughput against the machine's matmul peak and a minimal loop.

For each width on the ladder, in one process with the same thread count:

- matmul peak: FLOP/s of a 2048 x 2048 fp32 matrix multiply;
- roboscale train: the real trainer (batches sampled from the dataset, schedule,
  clipping, AdamW, records), FLOP/s counted exactly (measured matrix multiplies
  plus attention);
- minimal loop: the same model on one fixed batch, forward / backward / AdamW step
  and nothing else (the peer).

Prints model FLOP/s as a fraction of the matmul peak and the ratio to the minimal
loop; medians over --repeats. Run: python bench/train_speed.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from roboscale.data import GenerationSpec, generate
from roboscale.models import SequenceModel
from roboscale.train import TrainConfig, plan_run, train


def matmul_flops_per_second(repeats: int = 5) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * 2048**3 * repeats / (time.perf_counter() - start)


def minimal_loop(config: TrainConfig, steps: int) -> float:
    """FLOP/s of a bare loop on the trainer's model, one fixed batch."""
    plan = plan_run(config)
    torch.manual_seed(0)
    model = SequenceModel(plan.model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # as a user would write it
    starts = plan.data.windows("train")[: config.batch_size]
    batch = plan.data.batch(starts, config.context_steps, torch.device("cpu"))
    for _ in range(3):  # warm up
        loss, _ = model.loss(batch, config.task)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for _ in range(steps):
        loss, _ = model.loss(batch, config.task)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return steps * plan.tokens_per_step * plan.flops_per_token["exact"] / seconds


def trainer(config: TrainConfig, folder: Path) -> float:
    record = train(config, folder)
    return record["train_flops_per_second"]  # optimiser steps only; evaluation is timed apart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", default="16,32,64,128,192,256")
    parser.add_argument("--tokenizer", default="uniform:256@1", help="state tokenizer (default: one token per step)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0, help="target seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = generate(GenerationSpec(env="metaworld", tasks="reach-v3,push-v3", episodes=40), root / "mw").out
        peak = statistics.median(matmul_flops_per_second() for _ in range(3))
        print(
            f"threads {args.threads}, fp32 matmul 2048^2: {peak / 1e9:.1f} GFLOP/s; Meta-World bc, {args.tokenizer}, batch {args.batch_size}"
        )
        print(
            f"{'d_model':>7} {'layers':>6} {'params':>10} {'trainer GFLOP/s':>16} {'% of matmul':>11} {'minimal GFLOP/s':>16} {'trainer/minimal':>15}"
        )
        for width in (int(w) for w in args.widths.split(",")):
            base = TrainConfig(
                data=str(data),
                task="bc",
                tokenizer=args.tokenizer,
                d_model=width,
                steps=5,
                batch_size=args.batch_size,
                threads=args.threads,
                eval_points=1,
                eval_windows=64,
                checkpoint_seconds=1e9,
            )
            plan = plan_run(base)
            step_flops = plan.tokens_per_step * plan.flops_per_token["exact"]
            probe = minimal_loop(base, 3)
            steps = max(5, int(args.seconds * probe / step_flops))
            measured_trainer, measured_minimal, of_peak = [], [], []
            for repeat in range(args.repeats):
                # The machine's speed drifts: measure the peak next to each run, compare ratios.
                config = TrainConfig(**{**base.to_dict(), "steps": steps, "seed": repeat})
                peak_before = matmul_flops_per_second()
                ours = trainer(config, root / f"run-{width}-{repeat}")
                peak_after = matmul_flops_per_second()
                measured_trainer.append(ours)
                measured_minimal.append(minimal_loop(config, steps))
                of_peak.append(ours / (0.5 * (peak_before + peak_after)))
            ours, bare = statistics.median(measured_trainer), statistics.median(measured_minimal)
            ratio = statistics.median(t / m for t, m in zip(measured_trainer, measured_minimal))
            print(
                f"{width:>7} {plan.model_config.n_layer:>6} {plan.params['total']:>10,} {ours / 1e9:>16.2f} "
                f"{100 * statistics.median(of_peak):>10.0f}% {bare / 1e9:>16.2f} {ratio:>15.2f}"
            )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
