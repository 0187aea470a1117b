"""RQ job entry points and the per-process runtime they need."""
