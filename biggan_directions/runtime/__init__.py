"""Where and how computation runs: device and threads, precision, torch.compile, signals, FLOPs."""
