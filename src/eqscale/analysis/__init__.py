"""Analysis stages: collect (cells -> summary.csv), fit (laws, comparisons and verdicts -> results/fits/*.json),
plots (figures) and report (report.md).

Layers, each importing only the ones above it:
  errors, results (record types and their JSON), figures (figure declarations), verdicts (rules),
  table (the summary table), evaluation (per-sample losses, paired resampling)
  powerlaw (laws, objective, point fit), optim (batched L-BFGS), bootstrap (resampling, intervals),
  compute (F(N) per family), allocation (compute-optimal N*, S*, L* along F), noise (seed-to-seed noise)
  joint, isoflop, frontier, data_efficiency (one fit kind each), compare (arm vs reference arm)
  findings_rigid (the rigid-body study's findings: the only study-specific module)
  fit (every fit -> a Fits record), store (fit files on disk: the reader plots and report use)
  fit_cli, plots, report (the stages); synthetic draws studies from known laws for tests and benchmarks.
"""
