"""Naming directions: what each one does (zoom, rotation, shift, brightness, colour, background), measured from its walk frames."""
