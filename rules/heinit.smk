# Paper rules for 'heinit' (filled in by its issue).
