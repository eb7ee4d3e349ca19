"""paasta_deployd: the long-running, event-driven reconciler (work queue, informer, soa watch, loop)."""
