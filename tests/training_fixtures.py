"""Shared helpers for the training tests: small valid datasets, a tiny config, a graded fake reward.

Run as a script (``python tests/training_fixtures.py CONFIG_JSON RUN_DIR [STEP_SLEEP_S]``) it trains with the
fake reward; the resume-after-SIGKILL test starts it as a subprocess.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path
from typing import Any

from golongrl.data.io import write_records
from golongrl.training.config import TrainConfig, config_from_dict

REPO = Path(__file__).resolve().parents[1]

_FILLER = ("The harbour office logged every ship that entered the bay, its cargo and the name of its "
           "captain, and the clerks copied the ledger twice a week. ")


def make_row(task: str, i: int, *, filler: int = 2) -> dict[str, Any]:
    """A valid golongrl row of ``task`` (precise_retrieval, comprehension or numerical_reasoning)."""
    context = _FILLER * filler + f"On day {i} the ship Aurora-{i} carried {i + 7} crates of tea."
    spec = {
        "precise_retrieval": ("EM", f"How many crates did Aurora-{i} carry?", str(i + 7)),
        "comprehension": ("selection", f"What did Aurora-{i} carry? (A) tea (B) salt (C) wool (D) iron", "A"),
        "numerical_reasoning": ("math_longcot_math_verify", f"What is twice the crates of Aurora-{i}?", str(2 * (i + 7))),
    }
    source, question, answer = spec[task]
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": f"{context}\n\nQuestion: {question}"}],
        "ability": None,
        "reward_model": {"style": "rule", "ground_truth": {"doc_ids": [answer], "golden_label": answer, "summary": ""}},
        "extra_info": {"question": question, "task_type": task, "split": "train", "index": i},
    }


def write_dataset(path: Path, *, per_task: int = 4, filler: int = 2) -> Path:
    rows = [make_row(t, i, filler=filler) for i in range(per_task)
            for t in ("precise_retrieval", "comprehension", "numerical_reasoning")]
    write_records(path, rows)
    return path


def tiny_config(train_file: Path, **sections: Any) -> TrainConfig:
    """The tiny-test preset pointed at ``train_file``, with per-section overrides."""
    import yaml

    raw = yaml.safe_load((REPO / "configs" / "tiny-test.yaml").read_text())
    raw["data"] = {"train_files": [str(train_file)], "eval_files": [str(train_file)], "shuffle": True}
    raw["rollout"]["max_new_tokens"] = 8  # sampling over the 49k vocabulary dominates; keep tests short
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config_from_dict(raw, source="tiny-test.yaml")


def fake_score_batch(items: Any, **_: Any) -> list[Any]:
    """A deterministic graded reward with spread inside groups: a random tiny model scores
    (almost) zero under the real rewards, which would make every group constant."""
    from golongrl.rewards import ScoreResult

    out = []
    for item in items:
        text = item.solution_str if hasattr(item, "solution_str") else item["solution_str"]
        out.append(ScoreResult(score=(zlib.crc32(text.encode()) % 5) / 4, task="fake", reason=None))
    return out


def use_fake_reward(monkeypatch: Any) -> None:
    import golongrl.training.trainer as trainer

    monkeypatch.setattr(trainer, "score_batch", fake_score_batch)


def _run(config_json: str, run_dir: str, step_sleep: float) -> None:
    import time

    import golongrl.training.trainer as trainer

    trainer.score_batch = fake_score_batch
    cfg = TrainConfig.model_validate(json.loads(Path(config_json).read_text()))
    # The pause only widens the window in which the test's SIGKILL lands; metrics are unaffected.
    trainer.Trainer(cfg, run_dir).train(on_step=lambda step, metrics: time.sleep(step_sleep))


if __name__ == "__main__":
    _run(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
