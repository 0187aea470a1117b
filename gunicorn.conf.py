"""gunicorn settings for the web process (read by the Procfile's gunicorn, the fault suite and the benchmarks).

gevent workers: a connection waiting on a slow or stalled client costs a greenlet, not a worker,
so clients trickling bytes cannot hold up Twilio's webhooks (bench/slow_clients.py measures it).
psycopg 3 and redis-py cooperate with gevent's monkey-patching; SQLite calls are short.
"""

import os

worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))  # per worker, slow clients included
timeout = 15  # a worker silent this long (a request stuck in CPU) is restarted; Twilio waits 15 s at most
keepalive = 5
# Which forwarded headers to believe is the app's to decide (TRUSTED_PROXY_HOPS, ProxyFix): gunicorn would
# otherwise take X-Forwarded-Proto: https from any local client as HTTPS (and send HSTS on plain HTTP).
secure_scheme_headers: dict[str, str] = {}
