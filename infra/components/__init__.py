"""One ComponentResource per building block; each exposes its children as attributes for tests."""
