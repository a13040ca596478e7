"""The float golden model: the metaplastic binarized neural network of Laborieux et al.,
Nat. Commun. 12, 2549 (2021): binary layers with a straight-through estimator and a ``W_b``
buffer, BatchNorm with a chosen test-time statistics mode, the BNN with task-dependent BatchNorm,
Adam_meta (the paper's Algorithm 1, eager or fused into one compiled pass), the EWC baseline, and
one training epoch / evaluation pass. Depends on torch alone."""
