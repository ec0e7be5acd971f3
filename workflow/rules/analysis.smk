# Analysis: every cell -> summary.csv -> fits -> figures -> report.


rule collect:
    input:
        evals=cell_files("eval.json"),
        runs=cell_files("run.json"),
    output:
        summary="results/summary.csv",
        samples="results/sample_losses.npz",
    params:
        code=code("collect"),
        cells=json.dumps([{"dir": c.dir, "designs": sorted(c.designs)} for c in STUDY]),
    log:
        "results/logs/collect.log",
    benchmark:
        "results/benchmarks/collect.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale collect --cells-json {params.cells:q} --out {output.summary} > {log} 2>&1"


from eqscale.analysis.store import FIT_FILES  # noqa: E402  (the fit files, declared once)


rule fit:
    input:
        summary="results/summary.csv",
        samples="results/sample_losses.npz",
    output:
        [f"results/fits/{name}.json" for name in FIT_FILES],
    params:
        code=code("fit"),
        settings=config_slice("analysis", "evaluation", "study"),
    log:
        "results/logs/fit.log",
    benchmark:
        "results/benchmarks/fit.tsv"
    threads: 2
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale fit --summary {input.summary} --samples {input.samples} --out-dir results/fits "
        "--settings {params.settings:q} --jobs {threads} > {log} 2>&1"


from eqscale.analysis.figures import figure_names  # noqa: E402  (declared once per study, drawn by eqscale plot)

FIGURES = figure_names(STUDY_KIND)


rule plot:
    input:
        summary="results/summary.csv",
        fits=rules.fit.output,
        metrics=cell_files("metrics.csv"),
    output:
        report(
            expand("results/figures/{name}.png", name=FIGURES),
            category="Figures",
            caption="../report/figures.rst",
        ),
        expand("results/figures/{name}.pdf", name=FIGURES),
    params:
        code=code("plot"),
        study=STUDY_KIND,
    log:
        "results/logs/plot.log",
    benchmark:
        "results/benchmarks/plot.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale plot --summary {input.summary} --fits-dir results/fits --runs results/runs "
        "--out-dir results/figures --study {params.study} > {log} 2>&1"


rule report:
    # after the figures, so a finished run's report links figures that exist
    input:
        summary="results/summary.csv",
        fits=rules.fit.output,
        figures=rules.plot.output,
        lr_rules=expand(LR_RULE, model=SWEPT),
    output:
        "results/report.md",
    params:
        code=code("report"),
        study=STUDY_KIND,
        lr_rules=expand(LR_RULE, model=SWEPT),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale report --summary {input.summary} --fits-dir results/fits --figures-dir results/figures "
        "--lr-rules {params.lr_rules} --study {params.study} --out {output} > {log} 2>&1"
