# Paper rules for 'breakeven' (filled in by its issue).
