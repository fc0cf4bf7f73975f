# Reproduction of four papers on training dynamics; see README.md and docs/ARCHITECTURE.md.
from pathlib import Path
import sys

sys.path.insert(0, str(Path(workflow.basedir) / "src"))


# config.yaml is the default scale; `--configfile other.yaml` replaces it entirely
# (instead of being merged into it), `--config key=value` overrides single keys.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/train.smk"
include: "rules/iterative.smk"
include: "rules/minima.smk"
include: "rules/heinit.smk"
include: "rules/breakeven.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        get_all_targets(),
        REPORT_TARGETS,


rule iterative:
    input:
        get_paper_targets("iterative"),


rule minima:
    input:
        get_paper_targets("minima"),


rule heinit:
    input:
        get_paper_targets("heinit"),


rule breakeven:
    input:
        get_paper_targets("breakeven"),
