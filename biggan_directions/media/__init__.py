"""Looking at directions: latent walks, forward-only generator calls, frames, video files, render."""
