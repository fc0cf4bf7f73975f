"""Paper D, the break-even point: curvature along every training trajectory.

- :mod:`.plan`: settings and the rules' params (imported while the workflow is parsed:
  no torch, no plotting).
- :mod:`.measure`: the torch jobs, the probe subsets of an experiment and the metrics of
  every snapshot of a run (its docstring defines each metric).
- :mod:`.tables`: trajectories, runs, maxima over each trajectory, cost; the sweeps.
- :mod:`.claims`: claims D1-D3 (Conjectures 1 and 2, early peaks).
- :mod:`.figures`: the paper's figures.

Nothing is imported here, so importing :mod:`.plan` loads only the plan.
"""
