"""The float golden model: the metaplastic binarized neural network of Laborieux et al.,
Nat. Commun. 12, 2549 (2021): binary layers with a straight-through estimator, the BNN with
task-dependent BatchNorm, Adam_meta (the paper's Algorithm 1), the EWC baseline, and one training
epoch / evaluation pass. Depends on torch alone."""
