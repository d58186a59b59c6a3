"""Command-line entry points (``denoiselab-*``): parse arguments or compose Hydra configs, call the
library, print. Workflows that need several layers (fine-tune, then evaluate) are composed here."""
