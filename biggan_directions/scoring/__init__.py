"""Ranking directions: the LPIPS metric, scores along walks, a run scored into its files, tables, compare."""
