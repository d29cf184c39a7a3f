"""The interactive viewer: one view's state and image, and its web app."""
