# Paper rules for 'iterative' (filled in by its issue).
