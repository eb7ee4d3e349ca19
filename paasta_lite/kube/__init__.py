"""Kubernetes: the API client and its errors, rendering instances into objects, and planning changes."""
