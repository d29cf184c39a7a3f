"""Run folders: their layout and files, the locked resumable run, penalty curves, the scores file."""
