"""Demonstration quality: how far the recorded actions are from the scripted expert's."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from roboscale.errors import BadInputError


@dataclass(frozen=True)
class Quality:
    """Quality knobs, applied while the expert drives the robot.

    The executed (and recorded) action is the expert's plus Gaussian noise of std
    ``action_noise`` (in action units, clipped to the action bounds); with
    probability ``epsilon`` per step it is a uniformly random action instead. A
    fraction ``random_episodes`` of episodes is driven by a uniformly random policy
    throughout (failed demonstrations). ``successful_only`` keeps only episodes that
    solved the task (curated data); the expert's own action is always recorded too.
    """

    action_noise: float = 0.0
    epsilon: float = 0.0
    random_episodes: float = 0.0
    successful_only: bool = False

    def __post_init__(self) -> None:
        if self.action_noise < 0:
            raise BadInputError(f"action noise {self.action_noise}: must be >= 0 (a standard deviation)")
        for name in ("epsilon", "random_episodes"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadInputError(f"{name}={value}: must be a probability between 0 and 1")
        if self.successful_only and self.random_episodes == 1.0:
            raise BadInputError("successful_only with random_episodes=1 would keep nothing: lower one of them")

    @classmethod
    def parse(cls, text: str, random_episodes: float = 0.0, successful_only: bool = False) -> Quality:
        """From ``expert``, ``noise:0.1``, ``epsilon:0.2`` or ``noise:0.1+epsilon:0.05``."""
        values = {"action_noise": 0.0, "epsilon": 0.0}
        keys = {"noise": "action_noise", "epsilon": "epsilon"}
        for part in text.replace(",", "+").split("+"):
            part = part.strip().lower()
            if part in ("", "expert"):
                continue
            name, _, number = part.partition(":")
            if name not in keys or not number:
                raise BadInputError(
                    f"quality {text!r}: use expert, noise:STD, epsilon:PROB, or a combination like noise:0.1+epsilon:0.05"
                )
            try:
                values[keys[name]] = float(number)
            except ValueError:
                raise BadInputError(f"quality {text!r}: {number!r} is not a number") from None
        return cls(**values, random_episodes=random_episodes, successful_only=successful_only)

    def describe(self) -> str:
        parts = []
        if self.action_noise:
            parts.append(f"noise:{self.action_noise:g}")
        if self.epsilon:
            parts.append(f"epsilon:{self.epsilon:g}")
        text = "+".join(parts) or "expert"
        if self.random_episodes:
            text += f", {self.random_episodes:.0%} random-policy episodes"
        if self.successful_only:
            text += ", successful episodes only"
        return text

    def to_dict(self) -> dict:
        return asdict(self)
