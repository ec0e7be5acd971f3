"""Analysis stages: collect (cells -> summary.csv), fit (scaling laws with bootstrap intervals),
plots (figures) and report (report.md); powerlaw and optim hold the fitting machinery, synthetic
draws summaries from known laws for tests and benchmarks."""
