"""Recipe sections of the objectives trained through TRL: orpo, simpo, kto and grpo (one section per task).

Each section holds only what the objective adds to the shared `training` section; the names follow TRL's
configs where they exist (ORPOConfig, CPOConfig, KTOConfig, GRPOConfig), and train/tasks/ maps them there.
Torch-free, like the rest of the recipe schema (core/recipe.py includes these sections).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Set to "1" for one attempt by `ftbench train|resume --allow-reward-code`: the live permission to import
# grpo.reward_file (user code) in the job. Never stored with the run.
REWARD_CODE_ENV = "FTBENCH_ALLOW_REWARD_CODE"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OrpoSection(_Section):
    """ORPO (task: orpo): the SFT loss on the chosen answer plus beta x the log odds ratio of chosen over rejected."""

    beta: float = Field(
        0.1, gt=0, description="weight of the odds-ratio term (TRL ORPOConfig.beta, the paper's lambda)"
    )
    max_completion_length: int | None = Field(None, ge=1, description="None: answers may fill data.max_length")


class SimpoSection(_Section):
    """SimPO (task: simpo): TRL's CPOTrainer with loss_type simpo and no behaviour-cloning term (cpo_alpha 0)."""

    beta: float = Field(2.0, gt=0, description="scale of the length-normalised reward (the SimPO paper's 2.0-2.5)")
    gamma: float = Field(0.5, ge=0, description="target reward margin (TRL CPOConfig.simpo_gamma)")
    max_completion_length: int | None = Field(None, ge=1)


class KtoSection(_Section):
    """KTO (task: kto): good and bad completions need not come in pairs; the reference is the model at step 0."""

    beta: float = Field(0.1, gt=0)
    desirable_weight: float = Field(1.0, gt=0, description="weight of the loss on rows labelled true")
    undesirable_weight: float = Field(1.0, gt=0, description="weight of the loss on rows labelled false")


class RewardRule(_Section):
    """One built-in GRPO reward, scored per sampled completion in [0, 1] and multiplied by `weight`.

    - `answer`: 1 when the row's reference `answer` is the completion's answer: the first group of `pattern`
      when one is given (compared case-insensitively), else the answer appears as a word in the completion;
    - `format`: 1 when `pattern` (a Python regular expression) matches the completion (re.search);
    - `length`: 1 at `target` characters, falling linearly to 0 at 0 or 2 x target characters.
    """

    kind: Literal["answer", "format", "length"]
    weight: float = 1.0
    pattern: str | None = None
    target: int | None = Field(None, ge=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"grpo.rewards: pattern {value!r} is not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _needs(self) -> RewardRule:
        if self.kind == "format" and not self.pattern:
            raise ValueError(
                "grpo.rewards: a format reward needs pattern (a regular expression the completion must match)"
            )
        if self.kind == "length" and self.target is None:
            raise ValueError("grpo.rewards: a length reward needs target (the number of characters that scores 1)")
        return self


class GrpoSection(_Section):
    """GRPO (task: grpo): for each prompt sample `num_generations` answers, score them, and push the policy
    towards the answers that scored above their group's mean.

    `reward_file` is a Python file of reward functions (`def name(prompts, completions, **columns) -> list[float]`)
    and `reward_functions` the names to use from it. That file is user code run inside the training job: it is
    loaded only when the recipe names it and the run is started with the live `--allow-reward-code` flag.
    """

    rewards: list[RewardRule] = Field(default_factory=list)
    reward_file: str | None = None
    reward_functions: list[str] = Field(default_factory=list)
    num_generations: int = Field(4, ge=2, description="answers sampled per prompt (the group)")
    max_completion_length: int = Field(32, ge=1)
    temperature: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0, description="KL penalty to the starting model (0: no reference model needed)")

    @model_validator(mode="after")
    def _file_with_names(self) -> GrpoSection:
        if bool(self.reward_file) != bool(self.reward_functions):
            raise ValueError(
                "grpo.reward_file and grpo.reward_functions go together: the file and the function names to use from it"
            )
        return self

    def problem(self, completions_per_step: int) -> str | None:
        """Why a grpo run could not train (checked by the recipe when task is grpo), or None.
        `completions_per_step` is training.batch_size x training.gradient_accumulation."""
        if not self.rewards and not self.reward_file:
            return (
                "task grpo needs a reward: grpo.rewards (kind answer, format or length) or grpo.reward_file with "
                "grpo.reward_functions"
            )
        if completions_per_step % self.num_generations:
            return (
                f"training.batch_size x gradient_accumulation ({completions_per_step}) counts sampled answers and "
                f"must be a multiple of grpo.num_generations ({self.num_generations})"
            )
        return None
