"""The seed papers' small experiments, with closed forms beside trained estimates: WGAN's
parallel lines (Example 1, Figure 1), the optimal discriminator against the critic on two far
Gaussians (Figure 2), and learning a line from theta0 = 1.

A suite declares them as `[[experiment]]` tables (their schema: settings.py); each runs into
its own folder under the suite's results (experiment.json, status.json, table.parquet) and the
report draws them. The kinds are registered in harness/experiments.py.
"""
