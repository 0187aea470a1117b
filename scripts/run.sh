#!/usr/bin/env bash
# Starts the whole service from the Procfile: web (gunicorn), worker (RQ with
# scheduler) and sweeper.
#
# Development mode: with no TWILIO_ACCOUNT_SID and no TWILIO_AUTH_TOKEN set, the service signs and checks
# with a known local account (AC000..., token "devtoken"), sends its SMS and calls to the local Twilio
# stand-in (python -m ivr.twilio_standin, started beside it), honours the simulator's time, and writes its
# mail to the development Maildir. `make demo` and `python -m ivr.simulate` find it through
# $DEV_STATE_DIR/run.env (default var/dev/run.env), removed when it stops.
# Production (Twilio credentials set) is unchanged: nothing here is switched on.
#
# Redis: REDIS_URL when set; else a private redis-server under var/redis (port REDIS_PORT, 6390); else the
# Redis on 127.0.0.1:6379 in its database RUN_REDIS_DB (9), never the shared database 0.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}"
mkdir -p var
cleanup=()
on_exit() { for c in "${cleanup[@]}"; do eval "$c" || true; done; }
trap on_exit EXIT

redis_up() { .venv/bin/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5).ping()" "$1" 2>/dev/null; }

if [ -z "${REDIS_URL:-}" ]; then
  if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
     && ! redis_up redis://127.0.0.1:6379/0; then
    echo "installing redis-server (Debian package) for the embedded job queue"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
  fi
  redis_port="${REDIS_PORT:-6390}"
  if redis_up "redis://127.0.0.1:$redis_port/0" && [ -f var/redis/redis.pid ]; then
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"   # our own, left running by an earlier run
  elif command -v redis-server >/dev/null; then
    mkdir -p var/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --dir "$PWD/var/redis" \
      --pidfile "$PWD/var/redis/redis.pid" --logfile "$PWD/var/redis/redis.log" --save 60 1 --appendonly yes
    cleanup+=('kill "$(cat var/redis/redis.pid)" 2>/dev/null')
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  elif redis_up redis://127.0.0.1:6379/0; then
    export REDIS_URL="redis://127.0.0.1:6379/${RUN_REDIS_DB:-9}"
  else
    echo "No Redis: set REDIS_URL or install redis-server." >&2
    exit 1
  fi
fi

dev_mode=false
if [ -z "${TWILIO_ACCOUNT_SID:-}" ] && [ -z "${TWILIO_AUTH_TOKEN:-}" ]; then
  dev_mode=true
  export DEV_MODE=true
  export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=devtoken
  export DEV_TWILIO_PORT="${DEV_TWILIO_PORT:-8011}"
  export TWILIO_API_BASE_URL="http://127.0.0.1:$DEV_TWILIO_PORT"
  export ALLOW_SIMULATED_TIME=true
  # A stand-in coordinator to ring (its calls go to the stand-in like every other): the simulator's
  # `--coordinator accept|busy|...` answers that leg as the coordinator would.
  export COORDINATOR_NUMBERS="${COORDINATOR_NUMBERS:-+18055550190}"
fi

dev="${DEV_STATE_DIR:-var/dev}"
if $dev_mode; then export DEV_STATE_DIR="$dev"; fi
base="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
export PUBLIC_BASE_URL="$base"

# A first admin for the console, once. In development mode its password is kept in $dev/console-login
# (DEV_STATE_DIR, default var/dev; printed at every start); otherwise it is printed here once and nowhere else.
admin_note="Console sign-in:                         $base/login"
mkdir -p "$dev"
if [ -z "$(.venv/bin/flask --app wsgi users list 2>/dev/null | grep -w admin)" ]; then
  password="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')"
  if .venv/bin/flask --app wsgi users create-admin admin --password "$password" >/dev/null 2>&1; then
    admin_note="$admin_note  (first admin: admin / $password; change it with 'bin/supportline users set-password admin')"
    if $dev_mode; then (umask 077; echo "admin $password" > "$dev/console-login"); fi
  fi
elif $dev_mode && [ -s $dev/console-login ]; then
  read -r user password < "$dev/console-login"
  admin_note="$admin_note  (development admin: $user / $password, kept in $dev/console-login)"
fi

procfile=Procfile
if $dev_mode; then
  procfile=$dev/Procfile
  # The known development token must not be reachable from the network: listen on this machine only.
  { sed 's/--bind 0\.0\.0\.0:/--bind 127.0.0.1:/' Procfile
    echo "twilio: .venv/bin/python -m ivr.twilio_standin --port $DEV_TWILIO_PORT"; } > "$procfile"
  # What `make demo`, `python -m ivr.simulate` and bin/supportline need to reach this service (removed when it
  # stops; RUN_PID tells a stale file from a live one). Paths are absolute: the commands may run anywhere.
  effective="$(.venv/bin/python -c 'from settings import load_settings; s = load_settings()
print(s.database_url); print(s.dev_mailbox_dir.resolve()); print(s.recordings_dir.resolve())')"
  { read -r database_url; read -r mailbox_dir; read -r recordings_dir; } <<<"$effective"
  (umask 077; cat > "$dev/run.env" <<ENV
# written by scripts/run.sh (development mode) while it runs
RUN_PID=$$
PORT=$PORT
PUBLIC_BASE_URL=$base
DATABASE_URL=$database_url
REDIS_URL=$REDIS_URL
TWILIO_ACCOUNT_SID=$TWILIO_ACCOUNT_SID
TWILIO_AUTH_TOKEN=$TWILIO_AUTH_TOKEN
TWILIO_API_BASE_URL=$TWILIO_API_BASE_URL
DEV_TWILIO_PORT=$DEV_TWILIO_PORT
DEV_MODE=true
ALLOW_SIMULATED_TIME=true
DEV_STATE_DIR=$(cd "$dev" && pwd)
DEV_MAILBOX_DIR=$mailbox_dir
RECORDINGS_DIR=$recordings_dir
SUPPORT_NUMBER=${SUPPORT_NUMBER:-}
COORDINATOR_NUMBERS=$COORDINATOR_NUMBERS
ENV
  )
  cleanup+=("rm -f '$dev/run.env'")
fi
mailbox="$(.venv/bin/python -c 'from settings import load_settings; s = load_settings(); print("" if s.smtp_url else s.dev_mailbox_dir)')"
if [ -n "$mailbox" ]; then
  mail_note="no SMTP_URL: written to the development Maildir $mailbox/new (any mail client, or ls)"
else
  mail_note="SMTP (${SMTP_URL##*@})"
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
MSG
if $dev_mode; then
  cat <<MSG
Development mode (no Twilio credentials set):
  Twilio account / token:                  $TWILIO_ACCOUNT_SID / $TWILIO_AUTH_TOKEN (local only)
  SMS and calls go to the local stand-in:  $TWILIO_API_BASE_URL (printed below, listed at $base/dev/outbox)
  Coordinator rung in business hours:      $COORDINATOR_NUMBERS (the simulator answers: --coordinator accept|busy|...)
  Try it:                                  make demo   or   .venv/bin/python -m ivr.simulate --press 2 --audio samples/voicemail.wav
  Commands against this service:           bin/supportline ticket list   (bin/supportline --help)
MSG
fi
echo "Stop everything with Ctrl-C."
# Not exec: the cleanup above must run (private Redis, $dev/run.env) when honcho ends.
.venv/bin/honcho start -f "$procfile" -d .
