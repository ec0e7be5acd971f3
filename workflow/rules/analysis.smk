# Analysis: every cell -> summary.csv -> fits -> figures -> report.


rule collect:
    input:
        evals=cell_files("eval.json"),
        runs=cell_files("run.json"),
        code=src("analysis/collect.py"),
    output:
        "results/summary.csv",
    params:
        dirs=[c.dir for c in CELLS],
    log:
        "results/logs/collect.log",
    benchmark:
        "results/benchmarks/collect.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale collect --run-dirs {params.dirs} --out {output} > {log} 2>&1"


rule fit:
    input:
        summary="results/summary.csv",
        code=src("analysis/fit.py", "analysis/fit_cli.py", "analysis/powerlaw.py", "analysis/optim.py"),
    output:
        frontier="results/fits/frontier.json",
        joint="results/fits/joint.json",
        isoflop="results/fits/isoflop.json",
        data_efficiency="results/fits/data_efficiency.json",
    params:
        bootstrap=config["analysis"]["bootstrap"],
        seed=config["analysis"]["seed"],
        confidence=config["analysis"]["confidence"],
    log:
        "results/logs/fit.log",
    benchmark:
        "results/benchmarks/fit.tsv"
    threads: 2
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale fit --summary {input.summary} --out-dir results/fits --bootstrap {params.bootstrap} "
        "--seed {params.seed} --confidence {params.confidence} --jobs {threads} > {log} 2>&1"


FIGURES = ["loss_vs_compute", "isoflop", "optimal_allocation", "data_efficiency", "training_curves"]


rule plot:
    input:
        summary="results/summary.csv",
        fits=rules.fit.output,
        metrics=cell_files("metrics.csv"),
        code=src("analysis/plots.py"),
    output:
        report(
            expand("results/figures/{name}.png", name=FIGURES),
            category="Figures",
            caption="../report/figures.rst",
        ),
        expand("results/figures/{name}.pdf", name=FIGURES),
    log:
        "results/logs/plot.log",
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale plot --summary {input.summary} --fits-dir results/fits --runs results/runs "
        "--out-dir results/figures > {log} 2>&1"


rule report:
    # the report links the figures by path but does not read them: redrawing a plot leaves it be
    input:
        summary="results/summary.csv",
        fits=rules.fit.output,
        code=src("analysis/report.py"),
    output:
        "results/report.md",
    log:
        "results/logs/report.log",
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale report --summary {input.summary} --fits-dir results/fits --figures-dir results/figures "
        "--out {output} > {log} 2>&1"
