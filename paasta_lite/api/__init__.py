"""The paasta_lite HTTP API: the WSGI application and its OpenAPI document."""
