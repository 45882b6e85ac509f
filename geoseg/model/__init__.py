"""Models: the smp factory, the safe bundle format, prediction and training."""
