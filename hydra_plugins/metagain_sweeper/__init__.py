"""The grouped sweeper (``hydra/sweeper=grouped``): see :mod:`.grouped_sweeper`."""
