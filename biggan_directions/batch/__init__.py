"""Many classes: the batch manifest, where class jobs run, one class's job, run_batch, the gallery."""
