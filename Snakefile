# eqscale: does equivariance matter at scale? The whole study as one DAG.
#   snakemake --cores all                                 the default study (config.yaml)
#   snakemake --cores all --configfile presets/tiny.yaml  a few minutes, what the tests run
#   snakemake --profile profiles/slurm --configfile presets/paper.yaml   the paper's scale
#   snakemake --cores all --configfile presets/forcefield.yaml   the force-field study (study: forcefield)
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from eqscale.config import ConfigError, read_yaml

min_version("9.0")


# config.yaml is the default study; a --configfile (e.g. a preset) replaces it rather than
# overlaying it, so a preset means exactly what it says.
if not workflow.overwrite_configfiles:
    try:  # Snakemake's own reader names no line on a YAML error, and keeps the last of duplicate keys
        read_yaml(os.path.join(workflow.basedir, "config.yaml"))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None

    configfile: os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/data_forcefield.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        "results/report.md",
        rules.plot.output,
    default_target: True
