"""RQ job functions and the worker, pager and sweeper processes."""
