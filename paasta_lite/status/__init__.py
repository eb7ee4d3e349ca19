"""What is running: the health model, gathering instance status, pod logs, the deploy event log."""
