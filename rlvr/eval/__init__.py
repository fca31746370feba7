"""The evaluation system: what "good" means for a run and how it is watched.

- `config`: the ``rubric`` and ``watch.*`` config blocks (plain dataclasses)
- `rubric`: named, weighted dimensions -> reward sources, with a content-hash version
- `heldout`: held-out evaluation (greedy pass@1, sampled pass@k, per-prompt records)
- `stats`: the statistics the watch and the reports share (intervals, trend tests)
- `watch`, `watch_checks`: the reward-hacking watch (per-step figures and alerts)
- `badcases`, `badcases_review`: bad cases kept during a run; `rlvr-badcases` turns reviews into preference rows
- `report`, `report_render`: `rlvr-report` (per-dimension change with paired intervals)
- `watch_hook`: `RunWatch`, the training loop's one contact with all of the above
"""
