# Claims: each paper writes results/claims/{paper}.csv; here they become one verdict table.


rule claims:
    input:
        lambda wildcards: get_claim_tables(),
    output:
        csv=f"{RESULTS}/claims.csv",
        md=report(
            f"{RESULTS}/claims.md",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    localrule: True
    conda:
        "../envs/repro.yaml"
    script:
        "../scripts/claims.py"
