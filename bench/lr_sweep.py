"""The sweep behind roboscale's default learning-rate rule (``default_lr``).

Trains each width at the rule's learning rate and at 1/3x and 3x of it, same data
and token budget, and prints the validation loss: the rule should be at or near the
best multiplier at every width. Run: python bench/lr_sweep.py [--env metaworld]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from roboscale.data import GenerationSpec, Quality, generate
from roboscale.train import TrainConfig, default_lr, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="metaworld")
    parser.add_argument("--tasks", default="reach-v3,push-v3,pick-place-v3,drawer-open-v3")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--widths", default="32,64,128")
    parser.add_argument("--multipliers", default="0.33,1,3")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        spec = GenerationSpec(env=args.env, tasks=args.tasks, episodes=args.episodes, quality=Quality(action_noise=0.1))
        data = generate(spec, root / "data", workers=2).out
        multipliers = [float(m) for m in args.multipliers.split(",")]
        print(f"{args.env} {args.tasks}, {args.episodes} episodes, bc uniform:256@1, {args.steps} steps x 64 sequences")
        print("d_model  rule lr   " + "  ".join(f"x{m:<5g}" for m in multipliers) + "  best")
        for width in (int(w) for w in args.widths.split(",")):
            losses = []
            for multiplier in multipliers:
                lr = multiplier * default_lr(width)
                config = TrainConfig(
                    data=str(data),
                    task="bc",
                    tokenizer="uniform:256@1",
                    d_model=width,
                    steps=args.steps,
                    lr=lr,
                    threads=2,
                    eval_points=4,
                    checkpoint_seconds=1e9,
                )
                losses.append(train(config, root / f"d{width}-x{multiplier}")["final"]["val_loss"])
            best = multipliers[min(range(len(losses)), key=losses.__getitem__)]
            print(
                f"{width:>7}  {default_lr(width):.2e}  " + "  ".join(f"{loss:.4f}" for loss in losses) + f"  x{best:g}"
            )


if __name__ == "__main__":
    main()
