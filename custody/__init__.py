"""What proves: the custody ledger, its Merkle tree and checkpoints, the site key."""
