# Training and evaluation: one job each per grid cell (cells come from common.smk).


rule train:
    input:
        tokens="results/tokens/stats.json",
        code=model_code,
    output:
        run=f"{CELL_PATTERN}/run.json",
        model=f"{CELL_PATTERN}/model.pt",
        metrics=f"{CELL_PATTERN}/metrics.csv",
    wildcard_constraints:
        **CELL_CONSTRAINTS,
    params:
        cfg=lambda w: json.dumps({"seed": config["seed"], "tokens": config["tokens"],
                                  "training": {**config["training"],
                                               "lr": {w.model: config["training"]["lr"][w.model]}}},
                                 sort_keys=True),
        cell=lambda w: CELL_PATTERN.format(**w),
        budget=lambda w: cell_of(w).budget or 0,
    log:
        f"results/logs/train/{CELL_SUBPATH}.log",
    benchmark:
        f"results/benchmarks/train/{CELL_SUBPATH}.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=train_runtime,
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale train --config-json {params.cfg:q} --cell-dir {params.cell} --tokens results/tokens "
        "--budget {params.budget} > {log} 2>&1"


rule evaluate:
    input:
        run=f"{CELL_PATTERN}/run.json",
        model=f"{CELL_PATTERN}/model.pt",
        tokens="results/tokens/stats.json",
        code=lambda w: src("training/evaluate.py", "symmetry.py"),
    output:
        f"{CELL_PATTERN}/eval.json",
    wildcard_constraints:
        **CELL_CONSTRAINTS,
    params:
        cfg=lambda w: json.dumps({"tokens": config["tokens"], "evaluation": config["evaluation"],
                                  "training": {"threads": config["training"]["threads"]}}, sort_keys=True),
        cell=lambda w: CELL_PATTERN.format(**w),
    log:
        f"results/logs/evaluate/{CELL_SUBPATH}.log",
    benchmark:
        f"results/benchmarks/evaluate/{CELL_SUBPATH}.tsv"
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale evaluate --config-json {params.cfg:q} --cell-dir {params.cell} --tokens results/tokens > {log} 2>&1"
