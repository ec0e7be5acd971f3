"""Models: the size tables (`configs`, torch-free) and counts (`counts`, torch-free: parameters, FLOPs,
memory); the attention front end of both families (`attention`); equivariant layers and GATr
(`layers_equivariant`, `gatr`); the transformer; the per-object rigid fit (`rigidity`); building and
compiling (`registry`); FLOPs as torch counts them (`flops`)."""
