"""Training you can watch: TensorBoard events (and Weights & Biases) of discovery runs, scores and comparisons."""
