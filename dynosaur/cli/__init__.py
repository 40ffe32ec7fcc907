"""The ``dynosaur`` command: a thin layer over the library."""
