"""Paper B, "Three Factors Influencing Minima in SGD" (key ``minima``, id "B").

Follow a number from the rule to its code in one hop:

* :mod:`repro.minima.plan`     settings (defaults from schemas/minima.schema.yaml), run lists,
                               the input/params functions of rules/minima.smk (no torch);
* :mod:`repro.minima.measure`  torch jobs: sharpness at matched train loss, interpolation;
* :mod:`repro.minima.tables`   tidy tables: runs, interpolation, schedules, memorization, breaking;
* :mod:`repro.minima.claims`   claims B1-B7 (what each statistic and threshold is: its docstring);
* :mod:`repro.minima.figures`  the figures, through repro.figures.

Shared pieces: run records and the eta/S rules in :mod:`repro.runs`, the statistics in
:mod:`repro.stats`. Nothing is imported here, so importing ``repro.minima.plan`` stays light.
"""
