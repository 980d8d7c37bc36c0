"""Single-machine training: config, trainer, checkpoints, evaluation and the main job.

- :mod:`golongrl.training.config` - the validated YAML config (``TrainConfig``, ``load_config``);
  its ``algorithm`` section is engine-neutral and also drives verl.
- :mod:`golongrl.training.trainer` - one GoLongRL step top to bottom (``Trainer``).
- :mod:`golongrl.training.checkpoint` - atomic checkpoints that survive SIGKILL.
- :mod:`golongrl.training.tracking` - metrics to JSONL, TensorBoard, optional W&B.
- :mod:`golongrl.training.evaluate` - per-task reward of a policy on a dataset split (re-exports
  :mod:`golongrl.evaluation.policy`, which the ``golongrl`` eval benchmark shares).
- :mod:`golongrl.training.report`, :mod:`golongrl.training.main_job` - ``golongrl main``.
"""
