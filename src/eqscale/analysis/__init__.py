"""Analysis stages: collect (cells -> summary.csv), fit (scaling laws with bootstrap intervals -> fit files),
plots (figures) and report (report.md).

Layers, each importing only the ones above it:
  errors, results (record types and their JSON), figures (figure declarations), table (the summary table)
  powerlaw (laws, objective, point fit), optim (batched L-BFGS), bootstrap (resampling, intervals)
  frontier, joint, isoflop, data_efficiency (one fit kind each), compare (arm vs reference arm)
  fit (every fit -> a Fits record), store (fit files on disk; the reader plots and report use)
  fit_cli, plots, report (the stages); synthetic draws summaries from known laws for tests and benchmarks.
"""
