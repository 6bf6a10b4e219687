"""Helpers the tests share: trained run directories, tiny specs, a pseudo-terminal, the DDP
checks torchrun runs. Imported as `tests.helpers.<module>`."""
