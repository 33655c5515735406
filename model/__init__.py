"""pix2pix for SPECT synthesis: networks, losses, data, training loop and inference."""
