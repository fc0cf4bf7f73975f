# Paper rules for 'minima' (filled in by its issue).
