"""Pure record matching: standardize, block, compare, score, cluster, explain. No I/O."""
