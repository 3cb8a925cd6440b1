"""The example subscriber's Lambda code (its handler is subscriber_app.handler:handler)."""
