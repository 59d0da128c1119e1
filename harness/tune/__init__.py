"""`harness tune`: one Optuna study per run name of a suite, each trial an ordinary run.

space.py: the [tune] table and its search space (checked with the suite, without Optuna);
worker.py: one worker's loop over trials; storage.py: SQLite / PostgreSQL and the trial locks;
summary.py: the studies' outcome as printed at the end; dashboard.py: optuna-dashboard on a
study's storage (`harness dashboard`).
"""
