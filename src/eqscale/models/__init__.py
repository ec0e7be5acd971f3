"""Models: equivariant layers and GATr (`layers_equivariant`, `gatr`), the transformer, and what
both share: the per-object rigid fit (`rigidity`) and FLOP counting (`flops`)."""
