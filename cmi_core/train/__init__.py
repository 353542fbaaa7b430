"""Training one fold: the LightningModule, losses, optimizers, callbacks, the fold itself."""
