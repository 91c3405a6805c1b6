"""Sub-commands of the ``notifyd`` command line, one module each."""
