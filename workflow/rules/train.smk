# Training and evaluation: one job each per grid cell (cells come from common.smk).


rule lr_rule:
    input:
        runs=lambda w: cell_files("run.json", [c for c in SWEEP if c.model == w.model]),
    output:
        LR_RULE,
    wildcard_constraints:
        model="|".join(SWEPT) or "none",
    params:
        code=code("lr-rule"),
        cells=lambda w: [c.dir for c in SWEEP if c.model == w.model],
    log:
        "results/logs/lr_rule/{model}.log",
    benchmark:
        "results/benchmarks/lr_rule/{model}.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale lr-rule --cells {params.cells} --out {output} > {log} 2>&1"


rule train:
    input:
        data=DATA_READY,
        lr_rule=lr_rule_input,
    output:
        run=f"{CELL_PATTERN}/run.json",
        model=f"{CELL_PATTERN}/model.pt",
        metrics=f"{CELL_PATTERN}/metrics.csv",
    wildcard_constraints:
        **WILDCARD_CONSTRAINTS,
    params:
        code=lambda w: code(TRAIN_STAGE, model=w.model),
        cfg=train_config,
        cell=lambda w: cell_of(w).dir,
        data=train_data_arguments,
        stage=TRAIN_STAGE,
    log:
        f"results/logs/train/{PATH_PATTERN}.log",
    benchmark:
        f"results/benchmarks/train/{PATH_PATTERN}.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=train_runtime,
        **RUNTIME_RESOURCES,
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale {params.stage} --config-json {params.cfg:q} --threads {threads} "
        "--num-workers {resources.loader_workers} --checkpoint-every-s {resources.checkpoint_ms}e-3 "
        "--cell-dir {params.cell} {params.data} > {log} 2>&1"


rule evaluate:
    input:
        run=f"{CELL_PATTERN}/run.json",
        model=f"{CELL_PATTERN}/model.pt",
        data=DATA_READY,
    output:
        f"{CELL_PATTERN}/eval.json",
    wildcard_constraints:
        **WILDCARD_CONSTRAINTS,
    params:
        code=lambda w: code(EVALUATE_STAGE, model=w.model),
        cfg=config_slice("seed", "molecules", "forcefield", "evaluation") if FORCEFIELD
        else config_slice("seed", "tokens", "evaluation"),
        data="--molecules results/molecules" if FORCEFIELD else "--tokens results/tokens",
        stage=EVALUATE_STAGE,
        cell=lambda w: cell_of(w).dir,
    log:
        f"results/logs/evaluate/{PATH_PATTERN}.log",
    benchmark:
        f"results/benchmarks/evaluate/{PATH_PATTERN}.tsv"
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
        **RUNTIME_RESOURCES,
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale {params.stage} --config-json {params.cfg:q} --threads {threads} --cell-dir {params.cell} "
        "{params.data} > {log} 2>&1"
