"""The HTTP API and steward pages: thin, one hub service per request."""
