# Data stages of the force-field study: molecules labelled with GFN2-xTB -> label shards -> splits and statistics.


rule molecules:
    output:
        "results/molecules/shard-{shard}.h5",
    params:
        code=code("molecules"),
        cfg=config_slice("seed", "molecules"),
    wildcard_constraints:
        shard=r"\d{4}",
    log:
        "results/logs/molecules/shard-{shard}.log",
    benchmark:
        "results/benchmarks/molecules/shard-{shard}.tsv"
    threads: 1
    conda:
        "../../envs/eqscale.yaml"
    resources:
        mem_mb=2000,
        # ~8 configurations per second per core measured (bench/RESULTS.md); minutes with a wide margin
        runtime=30 + molecule_configurations() // (60 * config["molecules"]["num_shards"]),
    shell:
        "eqscale molecules --config-json {params.cfg:q} --shard $((10#{wildcards.shard})) --out {output} "
        "--no-progress > {log} 2>&1"


rule molecule_stats:
    input:
        molecule_shards(),
    output:
        # the shards are listed (sha256 and counts) in stats.json: the training and evaluation stages check
        # them against it, so stats.json alone stands for the whole labelled set
        "results/molecules/stats.json",
    params:
        code=code("molecules"),
        cfg=config_slice("seed", "molecules"),
    log:
        "results/logs/molecule_stats.log",
    benchmark:
        "results/benchmarks/molecule_stats.tsv"
    conda:
        "../../envs/eqscale.yaml"
    shell:
        "eqscale molecules --config-json {params.cfg:q} --stats --shards {input} --out {output} > {log} 2>&1"
