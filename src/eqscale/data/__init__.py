"""Token shards, the Dataset/DataLoader and augmentation for the rigid-body task."""
