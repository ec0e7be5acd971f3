"""Training and evaluation: the optimisation loop with checkpoint/resume (`loop`), its learning-rate
schedule (`schedule`), atomic verified checkpoints (`checkpoint`), RNG seeding and capture
(`seeding`), device choice (`device`), and the `eqscale train` / `eqscale evaluate` CLIs."""
