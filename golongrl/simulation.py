"""A controlled multitask policy-gradient experiment for comparing advantage estimators.

Each prompt has a handful of candidate answers with fixed rewards and a softmax policy over
them (one logit per candidate). Tasks differ the way GoLongRL's do:

* binary EM-like tasks (``precise_retrieval``: 8 candidates, ``comprehension``: 4 choices),
* graded F1/NDCG-like tasks (``exhaustive_retrieval``, ``graded_ranking``: partial credit),
* a ROUGE-like task (``summarization``) whose rewards are bunched in 0.2-0.4,

with easy prompts (the best answer starts likely) and hard ones (it starts rare), in an uneven
mix. One training step follows the GoLongRL recipe in miniature: sample generation batches of
prompts, 16 rollouts each, drop zero-spread groups and backfill (:class:`BackfillController`),
compute advantages with the estimator under test, take a token-mean policy-gradient step with
global gradient-norm clipping. Clipping makes tasks compete for one gradient budget, as they do
for shared parameters in an LLM; each prompt's logits are otherwise its own, so the experiment
isolates what the estimator does to the *share* and *within-task distribution* of the update.

Every estimator starts from the same prompts, rewards and initial logits for a given seed.
Evaluation is exact (expected reward under the current softmax), so the curves carry no
sampling noise. Runs in seconds; ``golongrl simulate`` writes a table, JSON and PNG plots.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from golongrl.advantages import BackfillController, compute_advantages, task_metrics

__all__ = [
    "SIM_TASKS",
    "SimTask",
    "SimulationConfig",
    "SimulationResult",
    "plot_simulation",
    "run_simulation",
    "simulation_tables",
    "summary_rows",
]


@dataclass(frozen=True)
class SimTask:
    """One simulated task type: reward shape, number of candidates and share of prompts."""

    name: str
    kind: str  # "binary", "graded" or "bunched"
    candidates: int
    share: float


SIM_TASKS: tuple[SimTask, ...] = (
    SimTask("precise_retrieval", "binary", 8, 0.35),
    SimTask("comprehension", "binary", 4, 0.20),
    SimTask("exhaustive_retrieval", "graded", 8, 0.15),
    SimTask("graded_ranking", "graded", 8, 0.10),
    SimTask("summarization", "bunched", 8, 0.20),
)


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the experiment (defaults: about 15 s on one core).

    ``grad_clip`` decides the regime: where it binds (0.05 here) every step has the same
    length and only the direction (each task's share) differs between estimators; where it
    does not (1.0) the step also scales with the advantages' magnitude, as an LLM's would with
    Adam off its trust region. ``dr_grpo`` is included as the no-normalisation reference.
    """

    estimators: tuple[str, ...] = ("grpo", "qwenlong_task_norm", "tmn", "tmn_reweight", "dr_grpo")
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 150
    num_prompts: int = 600
    prompts_per_step: int = 32
    generation_prompts: int = 48
    rollouts: int = 16
    max_gen_batches: int = 4
    lr: float = 30.0
    grad_clip: float = 1.0
    hard_fraction: float = 0.5
    easy_logit: float = 2.0
    hard_logit: float = -2.0
    eval_every: int = 5
    estimator_params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("steps", "num_prompts", "prompts_per_step", "generation_prompts", "rollouts",
                     "max_gen_batches", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if not 0 <= self.hard_fraction <= 1:
            raise ValueError(f"hard_fraction must be in [0, 1], got {self.hard_fraction}")


@dataclass
class _Environment:
    """Prompts of one seed: task index, hardness, candidate rewards and initial logits."""

    task: torch.Tensor  # long [P]
    hard: torch.Tensor  # bool [P]
    rewards: torch.Tensor  # float64 [P, K] (unused candidates: -inf logits, reward 0)
    logits: torch.Tensor  # float64 [P, K]
    best: torch.Tensor  # float64 [P], the best reward


def _make_environment(config: SimulationConfig, seed: int) -> _Environment:
    gen = torch.Generator().manual_seed(seed)
    shares = torch.tensor([t.share for t in SIM_TASKS], dtype=torch.float64)
    task = torch.multinomial(shares / shares.sum(), config.num_prompts, replacement=True, generator=gen)
    hard = torch.rand(config.num_prompts, generator=gen, dtype=torch.float64) < config.hard_fraction
    k_max = max(t.candidates for t in SIM_TASKS)
    rewards = torch.zeros(config.num_prompts, k_max, dtype=torch.float64)
    logits = torch.randn(config.num_prompts, k_max, generator=gen, dtype=torch.float64) * 0.5
    uniform = torch.rand(config.num_prompts, k_max, generator=gen, dtype=torch.float64)
    for index, spec in enumerate(SIM_TASKS):
        rows = task == index
        if spec.kind == "graded":
            rewards[rows] = 0.8 * uniform[rows]
        elif spec.kind == "bunched":
            rewards[rows] = 0.2 + 0.15 * uniform[rows]
        best_reward = 0.4 if spec.kind == "bunched" else 1.0
        rewards[rows, 0] = best_reward
        logits[rows, spec.candidates:] = -math.inf
        rewards[rows, spec.candidates:] = 0.0
    # Candidate 0 is the best answer; its starting logit sets the prompt's difficulty.
    logits[:, 0] = torch.where(hard, config.hard_logit, config.easy_logit)
    return _Environment(task, hard, rewards, logits, rewards.max(dim=1).values)


def _expected_reward(env: _Environment, logits: torch.Tensor) -> torch.Tensor:
    return (torch.softmax(logits, dim=1) * env.rewards).sum(dim=1)


def _summaries(env: _Environment, logits: torch.Tensor) -> dict[str, float]:
    """Exact expected reward per task, per task on hard prompts, and mean headroom gained."""
    expected = _expected_reward(env, logits)
    out: dict[str, float] = {}
    for index, spec in enumerate(SIM_TASKS):
        rows = env.task == index
        out[spec.name] = float(expected[rows].mean())
        out[f"{spec.name}/hard"] = float(expected[rows & env.hard].mean()) if bool((rows & env.hard).any()) else 0.0
    return out


def _headroom(env: _Environment, logits: torch.Tensor, start: torch.Tensor, rows: torch.Tensor) -> float:
    """Mean over the rows' tasks of (reward - start) / (best - start): comparable across scales."""
    expected = _expected_reward(env, logits)
    gained = (expected - start) / (env.best - start).clamp_min(1e-9)
    per_task = [float(gained[rows & (env.task == i)].mean()) for i in range(len(SIM_TASKS))
                if bool((rows & (env.task == i)).any())]
    return float(np.mean(per_task)) if per_task else 0.0


def _train_one(
    config: SimulationConfig, estimator: str, seed: int, tick: Callable[[], None]
) -> dict[str, object]:
    env = _make_environment(config, seed)
    logits = env.logits.clone()
    start = _expected_reward(env, logits)
    gen = torch.Generator().manual_seed(10_000 + seed)
    names = np.array([t.name for t in SIM_TASKS], dtype=object)
    num_tasks = len(SIM_TASKS)
    everyone = torch.ones_like(env.hard)
    curves: dict[str, list[float]] = {"step": []}
    share_sums = {key: np.zeros(num_tasks) for key in ("rate_num", "rate_adv", "adv_share", "grad_share")}
    cap_hits = 0
    clipped = 0
    norm_sum = 0.0

    def record(step: int) -> None:
        curves["step"].append(step)
        for key, value in _summaries(env, logits).items():
            curves.setdefault(key, []).append(value)
        curves.setdefault("headroom", []).append(_headroom(env, logits, start, everyone))
        curves.setdefault("headroom/hard", []).append(_headroom(env, logits, start, env.hard))

    record(0)
    for step in range(1, config.steps + 1):
        controller = BackfillController(config.prompts_per_step, config.max_gen_batches)
        prompts, actions, scores, groups = [], [], [], []
        while controller.need_more:
            batch = torch.randint(0, config.num_prompts, (config.generation_prompts,), generator=gen)
            probs = torch.softmax(logits[batch], dim=1)
            sampled = torch.multinomial(probs, config.rollouts, replacement=True, generator=gen).reshape(-1)
            rows = batch.repeat_interleave(config.rollouts)
            reward = env.rewards[rows, sampled]
            # Group ids must be unique across generation batches of one step.
            group = torch.arange(rows.numel()) // config.rollouts + controller.gen_batches * config.generation_prompts
            keep = controller.add(reward, group)
            prompts.append(rows[keep])
            actions.append(sampled[keep])
            scores.append(reward[keep])
            groups.append(group[keep])
        cap_hits += int(controller.cap_hit)
        rows, sampled, reward, group_ids = (torch.cat(prompts), torch.cat(actions), torch.cat(scores),
                                            torch.cat(groups))
        if rows.numel() == 0:
            tick()
            continue
        task_ids = names[env.task[rows].numpy()]
        advantages, _ = compute_advantages(estimator, reward, group_ids, task_ids, **config.estimator_params)
        # Token-mean loss -mean_i A_i log pi(a_i); d/dlogits = -(A_i / N) (onehot(a_i) - pi).
        probs = torch.softmax(logits[rows], dim=1)
        onehot = torch.nn.functional.one_hot(sampled, logits.shape[1]).to(torch.float64)
        per_rollout = -(advantages.to(torch.float64) / rows.numel()).unsqueeze(1) * (onehot - probs)
        grad = torch.zeros_like(logits).index_add_(0, rows, torch.nan_to_num(per_rollout))
        norm = float(grad.norm())
        scale = min(1.0, config.grad_clip / norm) if norm > 0 else 0.0
        clipped += int(norm > config.grad_clip)
        norm_sum += norm
        logits -= config.lr * scale * grad

        metrics = task_metrics(reward, group_ids, task_ids)
        row_task = env.task
        grad_energy = torch.zeros(num_tasks, dtype=torch.float64).index_add_(0, row_task, grad.square().sum(dim=1))
        adv_energy = torch.zeros(num_tasks, dtype=torch.float64).index_add_(
            0, env.task[rows], advantages.to(torch.float64).square()
        )
        for index, spec in enumerate(SIM_TASKS):
            share_sums["rate_num"][index] += metrics.get(f"task_metrics/{spec.name}/rate_num", 0.0)
            share_sums["rate_adv"][index] += metrics.get(f"task_metrics/{spec.name}/rate_adv", 0.0)
        share_sums["adv_share"] += (adv_energy / adv_energy.sum().clamp_min(1e-300)).numpy()
        share_sums["grad_share"] += (grad_energy / grad_energy.sum().clamp_min(1e-300)).numpy()
        if step % config.eval_every == 0 or step == config.steps:
            record(step)
        tick()
    shares = {key: {spec.name: float(v[i] / config.steps) for i, spec in enumerate(SIM_TASKS)}
              for key, v in share_sums.items()}
    return {"curves": curves, "shares": shares, "cap_hits": cap_hits, "clipped_steps": clipped / config.steps,
            "grad_norm": norm_sum / config.steps}


@dataclass
class SimulationResult:
    """Per estimator: curves averaged over seeds, final values (mean and std over seeds), shares."""

    config: SimulationConfig
    tasks: list[str]
    curves: dict[str, dict[str, list[float]]]
    final: dict[str, dict[str, tuple[float, float]]]
    auc: dict[str, dict[str, float]]
    shares: dict[str, dict[str, dict[str, float]]]
    cap_hits: dict[str, int]
    clipped_steps: dict[str, float]
    grad_norm: dict[str, float]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["config"] = asdict(self.config)
        return data


def run_simulation(config: SimulationConfig, progress: Callable[[], None] | None = None) -> SimulationResult:
    """Train every estimator from every seed; ``progress`` is called once per training step."""
    tick = progress or (lambda: None)
    curves, final, auc, shares, cap_hits, clipped, grad_norm = {}, {}, {}, {}, {}, {}, {}
    threads = torch.get_num_threads()
    # The tensors are tiny: intra-op threads only add synchronisation (10x slower on a busy box).
    torch.set_num_threads(1)
    try:
        results = {e: [_train_one(config, e, seed, tick) for seed in config.seeds] for e in config.estimators}
    finally:
        torch.set_num_threads(threads)
    for estimator, runs in results.items():
        keys = [k for k in runs[0]["curves"] if k != "step"]
        stacked = {k: np.array([run["curves"][k] for run in runs]) for k in keys}
        curves[estimator] = {"step": runs[0]["curves"]["step"], **{k: v.mean(axis=0).tolist() for k, v in stacked.items()}}
        final[estimator] = {k: (float(v[:, -1].mean()), float(v[:, -1].std())) for k, v in stacked.items()}
        # Area under the curve (mean over evaluation points): rewards faster learning, not just the end.
        auc[estimator] = {k: float(v.mean()) for k, v in stacked.items()}
        shares[estimator] = {
            key: {t.name: float(np.mean([run["shares"][key][t.name] for run in runs])) for t in SIM_TASKS}
            for key in runs[0]["shares"]
        }
        cap_hits[estimator] = int(sum(run["cap_hits"] for run in runs))
        clipped[estimator] = float(np.mean([run["clipped_steps"] for run in runs]))
        grad_norm[estimator] = float(np.mean([run["grad_norm"] for run in runs]))
    return SimulationResult(config, [t.name for t in SIM_TASKS], curves, final, auc, shares, cap_hits, clipped,
                            grad_norm)


# --------------------------------------------------------------------------------------------
# presentation: table, JSON, plots
# --------------------------------------------------------------------------------------------


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:.3f}±{value[1]:.3f}"


def summary_rows(result: SimulationResult) -> list[dict[str, object]]:
    """One row per estimator: learning (headroom gained, overall and on hard prompts) and how far
    each task's share of the update departs from its share of prompts."""
    rows = []
    for estimator in result.config.estimators:
        final, auc, shares = result.final[estimator], result.auc[estimator], result.shares[estimator]
        gaps = {t: shares["grad_share"][t] - shares["rate_num"][t] for t in result.tasks}
        rows.append({
            "estimator": estimator,
            "headroom": final["headroom"],
            "headroom_hard": final["headroom/hard"],
            "auc_headroom": auc["headroom"],
            "auc_headroom_hard": auc["headroom/hard"],
            "max_share_gap": max(abs(v) for v in gaps.values()),
            "summarization_grad_share": shares["grad_share"]["summarization"],
            "summarization_rate_num": shares["rate_num"]["summarization"],
            "final_reward": {t: final[t] for t in result.tasks},
        })
    return rows


def simulation_tables(result: SimulationResult) -> list[Any]:
    """Rich tables: the learning summary and the per-task shares."""
    from rich.table import Table

    c = result.config
    title = (f"Simulated multitask RL: {len(c.seeds)} seeds x {c.steps} steps, lr {c.lr}, grad clip {c.grad_clip} "
             "(headroom = fraction of the gap to the best answer closed, mean over tasks; ± = std over seeds)")
    summary = Table(title=title)
    for column in ("estimator", "headroom", "hard headroom", "AUC", "hard AUC", "max |grad share - rate_num|",
                   "summ. grad share", "grad norm", "clipped steps"):
        summary.add_column(column, justify="left" if column == "estimator" else "right")
    for row in summary_rows(result):
        summary.add_row(row["estimator"], _pm(row["headroom"]), _pm(row["headroom_hard"]),
                        f"{row['auc_headroom']:.3f}", f"{row['auc_headroom_hard']:.3f}",
                        f"{row['max_share_gap']:.3f}",
                        f"{row['summarization_grad_share']:.3f} (rate_num {row['summarization_rate_num']:.3f})",
                        f"{result.grad_norm[row['estimator']]:.3f}", f"{result.clipped_steps[row['estimator']]:.0%}")
    shares = Table(title="Per-task shares, mean over steps and seeds: rate_num (prompts), rate_adv (reward std), "
                         "grad share per estimator (squared gradient norm)")
    shares.add_column("task")
    shares.add_column("final reward range")
    shares.add_column("rate_num", justify="right")
    shares.add_column("rate_adv", justify="right")
    for estimator in c.estimators:
        shares.add_column(estimator, justify="right")
    first = c.estimators[0]
    for task in result.tasks:
        finals = [result.final[e][task][0] for e in c.estimators]
        shares.add_row(task, f"{min(finals):.3f}-{max(finals):.3f}",
                       f"{result.shares[first]['rate_num'][task]:.3f}",
                       f"{result.shares[first]['rate_adv'][task]:.3f}",
                       *(f"{result.shares[e]['grad_share'][task]:.3f}" for e in c.estimators))
    return [summary, shares]


def plot_simulation(result: SimulationResult, curves_path: str, shares_path: str) -> None:
    """Write two PNGs: per-task reward curves (plus hard-prompt headroom) and share scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from golongrl.data.io import atomic_output

    panels = [*result.tasks, "headroom/hard"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    for ax, key in zip(axes.flat, panels):
        for estimator in result.config.estimators:
            curve = result.curves[estimator]
            ax.plot(curve["step"], curve[key], label=estimator)
        ax.set_title("hard prompts: headroom gained" if key == "headroom/hard" else f"{key}: expected reward")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Simulated multitask RL (mean of {len(result.config.seeds)} seeds, grad clip {result.config.grad_clip})")
    with atomic_output(curves_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 6), constrained_layout=True)
    first = result.config.estimators[0]
    rate_num = [result.shares[first]["rate_num"][t] for t in result.tasks]
    rate_adv = [result.shares[first]["rate_adv"][t] for t in result.tasks]
    ax.scatter(rate_num, rate_adv, marker="s", color="black", label="rate_adv (reward std share)")
    for estimator in result.config.estimators:
        ax.scatter([result.shares[estimator]["rate_num"][t] for t in result.tasks],
                   [result.shares[estimator]["grad_share"][t] for t in result.tasks], label=f"grad share: {estimator}")
    for task, x, y in zip(result.tasks, rate_num, rate_adv):
        ax.annotate(task, (x, y), fontsize=7, xytext=(4, -10), textcoords="offset points")
    top = max(max(rate_num), max(rate_adv), *(max(result.shares[e]["grad_share"].values()) for e in result.config.estimators))
    ax.plot([0, top * 1.05], [0, top * 1.05], color="grey", linestyle="--", label="share = rate_num")
    ax.set_xlabel("rate_num (task's share of prompts)")
    ax.set_ylabel("share of update")
    ax.legend(fontsize=7)
    ax.set_title("Who gets the gradient: per-task share vs share of prompts")
    with atomic_output(shares_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
