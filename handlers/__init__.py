"""Lambda entry points. Each module is one function; shared domain code lives in handlers.core."""
