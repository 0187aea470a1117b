#!/usr/bin/env bash
# Starts the whole service from the Procfile: web (gunicorn), worker (RQ with
# scheduler) and sweeper. Without REDIS_URL and with no Redis answering on
# 127.0.0.1:6379, a private redis-server is started under var/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}"
mkdir -p var

if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
     && ! .venv/bin/python -c "import redis; redis.Redis(socket_connect_timeout=0.5).ping()" 2>/dev/null; then
    echo "installing redis-server (Debian package) for the embedded job queue"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
  fi
  if .venv/bin/python -c "import redis; redis.Redis(socket_connect_timeout=0.5).ping()" 2>/dev/null; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
  elif command -v redis-server >/dev/null; then
    mkdir -p var/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6390 --dir "$PWD/var/redis" \
      --pidfile "$PWD/var/redis/redis.pid" --logfile "$PWD/var/redis/redis.log" --save 60 1 --appendonly yes
    trap 'kill "$(cat var/redis/redis.pid)" 2>/dev/null || true' EXIT
    export REDIS_URL="redis://127.0.0.1:6390/0"
  else
    echo "No Redis: set REDIS_URL or install redis-server." >&2
    exit 1
  fi
fi

base="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"

# A first admin for the console, once: the password is printed here and nowhere else.
admin_note="Console sign-in:                         $base/login"
if [ -z "$(.venv/bin/flask --app wsgi users list 2>/dev/null | grep -w admin)" ]; then
  password="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')"
  if .venv/bin/flask --app wsgi users create-admin admin --password "$password" >/dev/null 2>&1; then
    admin_note="$admin_note  (first admin: admin / $password; change it with 'flask --app wsgi users set-password admin')"
  fi
fi
if [ -n "${SMTP_URL:-}" ]; then
  mail_note="SMTP (${SMTP_URL##*@})"
else
  mail_note="no SMTP_URL: every message is written to ${DEV_MAILBOX_DIR:-$PWD/var/mail} (ls ${DEV_MAILBOX_DIR:-var/mail}/new; or mutt -f ${DEV_MAILBOX_DIR:-var/mail})"
fi
cat <<MSG
supportline is starting.
  Twilio voice webhook (A call comes in):  POST $base/twilio/voice
  Twilio primary handler fails (fallback): POST $base/twilio/voice/fallback
  Twilio messaging webhook:                POST $base/twilio/sms
  Call status changes (optional):          POST $base/twilio/voice/status
  $admin_note
  Inbound email webhooks:                  POST $base/mail/inbound/mailgun/mime  POST $base/mail/inbound/sendgrid
  Outgoing email:                          $mail_note
  Health and metrics:                      $base/healthz  $base/readyz  $base/metrics
  Redis:                                   $REDIS_URL
Stop everything with Ctrl-C.
MSG
# Not exec: the trap above must stop the private Redis when honcho ends.
.venv/bin/honcho start -f Procfile
