"""The errors a store raises: a user-caused problem, printed as one sentence by the CLI."""


class StoreError(RuntimeError):
    """A store is missing, incomplete, or does not match what was asked for."""


class DamagedStoreError(StoreError):
    """A store's bytes are damaged: a checksum mismatch, a missing chunk, non-finite written rows."""
