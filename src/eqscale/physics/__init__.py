"""Physics: procedural shapes, Kubric asset packaging and rigid-body simulation."""
