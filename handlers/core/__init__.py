"""Domain code shared by the handlers: events, auth, store, publisher, settings."""
