# Data stages: procedural assets -> simulated raw shards.


rule assets:
    output:
        manifest="results/assets/manifest.json",
        meshes="results/assets/meshes.h5",
    params:
        code=code("assets"),
        cfg=config_slice("assets"),
    log:
        "results/logs/assets.log",
    benchmark:
        "results/benchmarks/assets.tsv"
    threads: 1
    conda:
        "../../envs/eqscale.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "eqscale assets --config-json {params.cfg:q} --out results/assets > {log} 2>&1"


rule simulate:
    input:
        manifest="results/assets/manifest.json",
        meshes="results/assets/meshes.h5",
    output:
        "results/raw/shard-{shard}.h5",
    params:
        code=code("simulate"),
        cfg=config_slice("seed", "assets", "simulation"),
    wildcard_constraints:
        shard=r"\d{4}",
    log:
        "results/logs/simulate/shard-{shard}.log",
    benchmark:
        "results/benchmarks/simulate/shard-{shard}.tsv"
    threads: 1
    conda:
        "../../envs/eqscale.yaml"
    resources:
        mem_mb=1500,
        runtime=60,
    shell:
        "eqscale simulate --config-json {params.cfg:q} --shard {wildcards.shard} "
        "--assets results/assets --out {output} > {log} 2>&1"


rule tokenize:
    input:
        raw=raw_shards(),
        meshes="results/assets/meshes.h5",
    output:
        # the shards are listed (with their sha256 and counts) in stats.json, written last: the loader checks
        # them against it, so stats.json alone stands for the whole generation
        stats="results/tokens/stats.json",
    params:
        code=code("tokenize"),
        cfg=config_slice("seed", "tokens"),
    log:
        "results/logs/tokenize.log",
    benchmark:
        "results/benchmarks/tokenize.tsv"
    threads: 1
    conda:
        "../../envs/eqscale.yaml"
    resources:
        mem_mb=2000,
        # about 70 trajectories/s measured; minutes with a wide margin
        runtime=30 + len(raw_shards()) * config["simulation"]["trajectories_per_shard"] // 1000,
    shell:
        "eqscale tokenize --config-json {params.cfg:q} --raw {input.raw} "
        "--assets results/assets --out results/tokens > {log} 2>&1"
