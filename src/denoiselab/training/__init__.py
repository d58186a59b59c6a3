"""The training layer: data modules and on-the-fly mixing, the LightningModule, losses, callbacks,
the train task and data preparation. May import ``evaluation`` (metrics for the quality callback)
and ``core``; nothing below imports it."""
