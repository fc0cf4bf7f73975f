"""Paper A, "Residual connections encourage iterative inference" (key ``iterative``).

    plan      settings (defaults from schemas/iterative.schema.yaml), run lists and the
              input/params functions of rules/iterative.smk; imports no torch
    measure   the torch jobs: block metrics of final models and snapshots, per run
    tables    tidy tables and Table 1 from the per-run measurements
    claims    claims A1-A7 as repro.claims.Claim records
    figures   the paper's figures, saved through repro.figures

The block measurements themselves are the public library module :mod:`repro.blocks`.
Nothing is imported here, so ``import repro.iterative.plan`` stays torch-free.
"""
