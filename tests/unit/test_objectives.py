"""The objectives beyond DPO without training: IPO's loss against the paper and TRL, GRPO's rule rewards and the
permission for user reward code, the unpaired and prompts formats, recipe checks and the monitor's line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.objectives import REWARD_CODE_ENV, RewardRule
from ftbench.core.recipe import validate_recipe


def test_ipo_loss_matches_trl_and_the_paper_on_fixed_tensors():
    """IPO (Azar et al. 2023, eq. 17): (h - 1/(2 tau))^2 with h the difference of the chosen and rejected
    log-ratios. TRL (trainer/dpo_trainer.py, loss_type "ipo") averages each log-ratio over the answer's tokens,
    which the IPO authors confirmed is the form behind the paper's results; ftbench now does the same."""
    torch = pytest.importorskip("torch")
    from ftbench.train.tasks.dpo import answer_lengths, dpo_loss

    pc, pr = torch.tensor([-12.0, -30.0]), torch.tensor([-15.0, -26.0])  # policy, summed over answer tokens
    rc, rr = torch.tensor([-13.0, -31.0]), torch.tensor([-14.0, -25.0])  # reference
    n_c, n_r = torch.tensor([4.0, 10.0]), torch.tensor([6.0, 5.0])  # answer tokens
    beta = 0.1
    loss, _ = dpo_loss(pc, pr, rc, rr, beta, "ipo", (n_c, n_r))
    # TRL's form, written out: per-token log-ratios, then the paper's squared loss around 1/(2 beta)
    h = (pc - rc) / n_c - (pr - rr) / n_r  # [0.25 + 1/6, 0.1 + 0.2]
    assert h.tolist() == pytest.approx([0.25 + 1 / 6, 0.1 + 0.2])
    expected = ((h - 1 / (2 * beta)) ** 2).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss) == pytest.approx(((0.25 + 1 / 6 - 5) ** 2 + (0.3 - 5) ** 2) / 2, rel=1e-6)
    # The paper's formula read literally (summed log-probs) is what ftbench computed before: a different number
    summed, _ = dpo_loss(pc, pr, rc, rr, beta, "ipo")
    assert float(summed) == pytest.approx(((2 - 5) ** 2 + (2 - 5) ** 2) / 2, rel=1e-6)
    assert not math.isclose(float(summed), float(loss))
    # One-token answers: the two readings agree
    one = torch.ones(2)
    assert float(dpo_loss(pc, pr, rc, rr, beta, "ipo", (one, one))[0]) == pytest.approx(float(summed))
    # The lengths are the label tokens of each row (the prompt's -100 labels and the first position excluded)
    labels = torch.tensor([[-100, -100, 5, 6, 7], [-100, 4, 5, -100, -100]])
    assert answer_lengths({"labels": labels}).tolist() == [3, 2]


@pytest.mark.parametrize(
    ("rule", "completion", "answer", "score"),
    [
        ({"kind": "format", "pattern": r"^Answer: \w+$"}, "Answer: red", None, 1.0),
        ({"kind": "format", "pattern": r"^Answer: \w+$"}, "I think red", None, 0.0),
        ({"kind": "answer"}, "It is Red, surely", "red", 1.0),
        ({"kind": "answer"}, "It is reddish", "red", 0.0),
        ({"kind": "answer"}, "anything", None, None),
        ({"kind": "answer", "pattern": r"Answer: (\w+)"}, "Answer: RED", "red", 1.0),
        ({"kind": "answer", "pattern": r"Answer: (\w+)"}, "red. Answer: blue", "red", 0.0),
        ({"kind": "length", "target": 10}, "x" * 10, None, 1.0),
        ({"kind": "length", "target": 10}, "x" * 15, None, 0.5),
        ({"kind": "length", "target": 10}, "x" * 40, None, 0.0),
    ],
)
def test_rule_rewards_score_each_completion(rule, completion, answer, score):
    from ftbench.train.rewards import rule_score

    assert rule_score(RewardRule(**rule), completion, answer) == score


def test_rule_functions_take_trl_arguments_and_are_named_for_the_events():
    from ftbench.core.objectives import GrpoSection
    from ftbench.train.rewards import reward_functions

    cfg = GrpoSection(
        rewards=[
            {"kind": "format", "pattern": "^Answer:"},
            {"kind": "answer", "weight": 2.0},
            {"kind": "format", "pattern": "!$"},
        ]
    )
    funcs, weights = reward_functions(cfg)
    assert [f.__name__ for f in funcs] == ["format_0", "answer", "format_2"] and weights == [1.0, 2.0, 1.0]
    completions = [[{"role": "assistant", "content": "Answer: red!"}], "Answer: blue"]  # conversational and plain
    assert funcs[1](["p", "p"], completions, answer=["red", "red"]) == [1.0, 0.0]
    assert funcs[0](["p", "p"], completions, answer=["red", "red"]) == [1.0, 1.0]


def test_user_reward_code_needs_the_live_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from ftbench.core.objectives import GrpoSection
    from ftbench.train.rewards import reward_functions

    marker = tmp_path / "ran"
    code = tmp_path / "rewards.py"
    code.write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "def short(prompts, completions, **kw):\n    return [1.0 / (1 + len(c)) for c in completions]\n"
    )
    cfg = GrpoSection(reward_file=str(code), reward_functions=["short"])
    monkeypatch.delenv(REWARD_CODE_ENV, raising=False)
    with pytest.raises(FtbenchError, match="--allow-reward-code") as info:
        reward_functions(cfg)
    assert "rewards.py" in info.value.message and not marker.exists()  # refused before a line of it ran
    monkeypatch.setenv(REWARD_CODE_ENV, "0")
    with pytest.raises(FtbenchError):
        reward_functions(cfg)
    monkeypatch.setenv(REWARD_CODE_ENV, "1")
    (short,), weights = reward_functions(cfg)
    assert short([], ["abc"]) == [0.25] and weights == [1.0] and marker.exists()
    with pytest.raises(FtbenchError, match="'long'") as info:
        reward_functions(GrpoSection(reward_file=str(code), reward_functions=["long"]))
    assert "short" in info.value.hint


def test_train_refuses_a_reward_file_without_the_flag(tmp_path: Path):
    from ftbench.commands.train import reward_code_env
    from ftbench.core.recipe import resolve_recipe_paths

    raw = {"task": "grpo", "model": "m", "data": "d", "grpo": {"reward_file": "r.py", "reward_functions": ["f"]}}
    recipe = resolve_recipe_paths(validate_recipe(raw), tmp_path, tmp_path / "recipes")
    code = tmp_path / "recipes" / "r.py"  # relative to the recipe's folder, not the workspace or cwd
    assert recipe.grpo.reward_file == str(code)
    with pytest.raises(FtbenchError, match=r"grpo.reward_file .*r.py is Python code") as info:
        reward_code_env(recipe, allowed=False)
    assert "--allow-reward-code" in info.value.hint
    with pytest.raises(FtbenchError, match="does not exist"):
        reward_code_env(recipe, allowed=True)
    code.parent.mkdir()
    code.write_text("def f(prompts, completions, **kw):\n    return [0.0] * len(completions)\n")
    assert reward_code_env(recipe, allowed=True) == {REWARD_CODE_ENV: "1"}
    sft = validate_recipe({"task": "sft", "model": "m", "data": "d"})
    assert reward_code_env(sft, allowed=False) == {REWARD_CODE_ENV: "0"}


def test_unpaired_and_prompts_formats_are_detected_and_checked():
    from ftbench.catalog.formats import detect_format, row_problem

    unpaired = [
        {"prompt": "Hi", "completion": "Hello!", "label": True},
        {"prompt": "Hi", "completion": "No.", "label": False},
    ]
    assert detect_format(unpaired) == "unpaired"
    assert detect_format([{"prompt": "2+2?", "answer": "4"}, {"prompt": "Name a colour"}]) == "prompts"
    assert detect_format([{"prompt": "p", "chosen": "a", "rejected": "b"}]) == "preference"  # still first
    assert row_problem("unpaired", {"prompt": "p", "completion": "c", "label": "yes"}) == (
        "'label' must be true (a good completion) or false (a bad one), not 'yes'"
    )
    assert row_problem("prompts", {"prompt": "p", "answer": 4}) == "'answer' must be a string"
    assert row_problem("prompts", {"prompt": [{"role": "user", "content": "p"}]}) is None


@pytest.mark.parametrize(
    ("grpo", "training", "message"),
    [
        ({}, {}, "task grpo needs a reward: grpo.rewards"),
        ({"rewards": [{"kind": "format"}]}, {}, "grpo.rewards: a format reward needs pattern"),
        ({"rewards": [{"kind": "length"}]}, {}, "grpo.rewards: a length reward needs target"),
        ({"rewards": [{"kind": "format", "pattern": "(("}]}, {}, "grpo.rewards: pattern '((' is not a valid"),
        ({"reward_file": "r.py"}, {}, "grpo.reward_file and grpo.reward_functions go together"),
        (
            {"rewards": [{"kind": "length", "target": 5}], "num_generations": 4},
            {"batch_size": 6},
            "training.batch_size x gradient_accumulation (6) counts sampled answers and must be a multiple of "
            "grpo.num_generations (4)",
        ),
    ],
)
def test_grpo_recipe_problems_name_the_key(grpo, training, message):
    with pytest.raises(FtbenchError) as info:
        validate_recipe({"task": "grpo", "model": "m", "data": "d", "grpo": grpo, "training": training})
    assert message in info.value.message


def test_recipe_sections_reach_their_tasks():
    simpo = validate_recipe({"task": "simpo", "model": "m", "data": "d", "simpo": {"gamma": 1.0}})
    assert (simpo.simpo.beta, simpo.simpo.gamma) == (2.0, 1.0)
    with pytest.raises(FtbenchError, match="kto.desirable_wieght"):
        validate_recipe({"task": "kto", "model": "m", "data": "d", "kto": {"desirable_wieght": 1.0}})
    with pytest.raises(FtbenchError, match="cannot train task kto; use unpaired"):
        validate_recipe({"task": "kto", "model": "m", "data": {"train": "d", "format": "preference"}})


def test_the_monitor_folds_the_objective_metric_per_step():
    from ftbench.core.event_schema import encode_event, parse_event, problems
    from ftbench.tui.widgets.run_data import RunView

    view = RunView()
    for attempt, step, value in ((1, 2, 0.1), (1, 4, 0.3), (1, 6, 0.2), (2, 4, 0.35), (2, 6, 0.5)):
        fields = {"step": step, "objective": "grpo", "metric": "reward", "value": value, "reward": value}
        assert problems("objective", fields) == []
        view.add(parse_event(encode_event("objective", fields, attempt)))
    assert view.objective == [0.1, 0.35, 0.5] and view.objective_metric == "reward"  # attempt 2 resumed at 4
