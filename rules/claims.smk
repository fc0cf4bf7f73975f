# Claims and report pages: every paper's claims -> one verdict table; the papers' numbers
# beside ours; one HTML summary page per paper for `snakemake --report`.
from repro import paper_comparison
from repro.report_pages import paper_settings

# papers this configuration builds: those with targets
REPORT_PAPERS = [paper for paper in PAPERS if get_paper_targets(paper)]
# the paper-scale config, read at every scale for one thing: Table 1's parameter counts
# need no training, so the comparison counts the paper's architectures from this file
PAPER_CONFIG = os.path.join(
    os.path.dirname(workflow.main_snakefile), "configs", "paper.yaml"
)
# added to rule all: the comparison and one page per paper
REPORT_TARGETS = [f"{RESULTS}/tables/paper_comparison.csv"] + [
    f"{RESULTS}/report/{paper}.html" for paper in REPORT_PAPERS
]


rule claims:
    input:
        lambda wildcards: get_claim_tables(),
    output:
        csv=f"{RESULTS}/claims.csv",
        md=report(
            f"{RESULTS}/claims.md",
            caption="../report/claims.rst",
            category=OVERVIEW,
            subcategory="Claims",
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    localrule: True
    conda:
        "../envs/repro.yaml"
    params:
        scale=config["claims"]["scale"],
    script:
        "../scripts/claims.py"


rule paper_comparison:
    input:
        **paper_comparison.input_tables(REPORT_PAPERS, RESULTS),
        **({"paper_config": PAPER_CONFIG} if "iterative" in REPORT_PAPERS else {}),
    output:
        csv=f"{RESULTS}/tables/paper_comparison.csv",
        md=report(
            f"{RESULTS}/tables/paper_comparison.md",
            caption="../report/paper_comparison.rst",
            category=OVERVIEW,
            subcategory="Comparison with the papers",
        ),
    log:
        f"{RESULTS}/logs/paper_comparison.log",
    localrule: True
    conda:
        "../envs/repro.yaml"
    params:
        enabled=REPORT_PAPERS,
    script:
        "../scripts/paper_comparison.py"


rule paper_page:
    input:
        claims=f"{RESULTS}/claims.csv",
        comparison=f"{RESULTS}/tables/paper_comparison.csv",
        runs=f"{RESULTS}/run_table.csv",
    output:
        report(
            f"{RESULTS}/report/{{paper}}.html",
            caption="../report/paper_page.rst",
            category=lambda wildcards: paper_registry.get(wildcards.paper).category,
            subcategory="Summary",
        ),
    log:
        f"{RESULTS}/logs/report/{{paper}}.log",
    localrule: True
    conda:
        "../envs/repro.yaml"
    params:
        settings=lambda wildcards: paper_settings(config, wildcards.paper),
    script:
        "../scripts/paper_page.py"
