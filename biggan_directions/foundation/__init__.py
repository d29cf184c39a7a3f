"""Foundations, used by every stage: errors, config fields, atomic files, int ranges, folder locks."""
