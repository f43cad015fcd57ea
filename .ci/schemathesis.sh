#!/usr/bin/env bash
# Fuzzes the admin API with schemathesis against the real binary: every operation of the
# served OpenAPI document (`/api/v1/openapi.json`), valid and invalid inputs, checked for
# no 5xx, documented status codes and content types, and bodies that match the schema.
#
# It installs a pinned schemathesis into a virtualenv (reused when present), starts
# `rollcall serve` on 127.0.0.1 with ports the kernel picks, a fresh data dir and a random
# admin token, seeds a little data through the API (and attendance records with photos
# through `rollcall simulate`), then runs the passes: a project manager (a personal `rcp_`
# token), the administrator (the root token), and the project manager again for the one
# operation that would end its own pass. The server is always stopped; on failure its log's
# tail is printed; any failure exits non-zero. Usage: bash .ci/schemathesis.sh (from anywhere).
#
# Env: ST_EXAMPLES (examples per operation in the administrator's pass, a quarter of it for
# the manager's), ST_SEED, ST_VENV (the virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
ST_EXAMPLES="${ST_EXAMPLES:-150}"
ST_SEED="${ST_SEED:-20260101}"
ST_VENV="${ST_VENV:-$PWD/target/schemathesis-venv}"

# --- schemathesis, pinned -----------------------------------------------------------------
if [ "$("$ST_VENV/bin/schemathesis" --version 2>/dev/null || true)" != "schemathesis, version $ST_VERSION" ]; then
  rm -rf "$ST_VENV"
  if ! python3 -m venv "$ST_VENV"; then
    # A Debian python3 without the venv module.
    apt-get update -q && apt-get install -y -q python3-venv
    rm -rf "$ST_VENV"
    python3 -m venv "$ST_VENV"
  fi
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
PY="$ST_VENV/bin/python"
ST="$ST_VENV/bin/schemathesis"

# --- the binary -----------------------------------------------------------------------------
# `--tests` builds with the feature set of the test build that CI has just run, so nothing is
# compiled again: a plain `cargo build` unifies features without the dev-dependencies and
# rebuilds most of the dependency tree (minutes on two cores).
cargo build --workspace --locked --tests
BIN="$PWD/target/debug/rollcall"

# --- the server -----------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/rollcall-st.XXXXXX)"
SERVER_PID=""
STATUS=1
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$STATUS" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    # A 5xx is logged at ERROR by the handler, maybe long before the end of the log.
    echo "--- rollcall serve: its last 40 errors and warnings ---" >&2
    grep -E ' (ERROR|WARN) ' "$WORK/server.log" | tail -n 40 >&2 || true
    echo "--- rollcall serve: the last 30 lines of its log ---" >&2
    tail -n 30 "$WORK/server.log" >&2 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_TOKEN="st-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
# Port 0: the kernel picks free ports and serve prints the addresses it bound. Only
# loopback; the ROLLCALL_* environment of the caller does not leak into this server. The log
# exists before the server starts, so the loop below can read it at once.
: >"$WORK/server.log"
env -u ROLLCALL_DATABASE_URL -u ROLLCALL_CONFIG -u ROLLCALL_PUBLIC_URL \
  RUST_LOG="${RUST_LOG:-info}" "$BIN" serve \
  --data-dir "$WORK/data" \
  --http-addr 127.0.0.1:0 \
  --tcp-addr 127.0.0.1:0 \
  --admin-token "$ADMIN_TOKEN" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE="" TCP=""
for _ in $(seq 1 600); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis: rollcall serve exited before it was ready" >&2
    exit 1
  fi
  BASE="$(sed -n 's#^ *管理 API / admin API: *\(http://127\.0\.0\.1:[0-9]*\)/api/v1 .*#\1#p' "$WORK/server.log" | head -n 1)"
  TCP="$(sed -n 's#^ *设备 TCP / device TCP: *\(127\.0\.0\.1:[0-9]*\)$#\1#p' "$WORK/server.log" | head -n 1)"
  if [ -n "$BASE" ] && curl -fsS -o /dev/null "$BASE/api/v1/openapi.json" 2>/dev/null; then
    break
  fi
  BASE=""
  sleep 0.1
done
if [ -z "$BASE" ] || [ -z "$TCP" ]; then
  echo "schemathesis: rollcall serve not ready within 60 s" >&2
  exit 1
fi
echo "schemathesis: rollcall serve at $BASE (device TCP $TCP)"

# --- seed data ------------------------------------------------------------------------------
# `api METHOD PATH [BODY]` as the administrator; prints the answer, fails on a non-2xx
# (printing that answer too).
api() {
  local method="$1" path="$2" body="${3:-}"
  local args=(-sS --fail-with-body -X "$method" -H "Authorization: Bearer $ADMIN_TOKEN")
  if [ -n "$body" ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  curl "${args[@]}" "$BASE/api/v1$path"
}
# `field NAME` reads a member of the JSON object on stdin (a.b[0].c paths).
field() {
  "$PY" -c '
import json, re, sys
v = json.load(sys.stdin)
for part in re.findall(r"[^.\[\]]+", sys.argv[1]):
    v = v[int(part)] if isinstance(v, list) else v[part]
print(v)' "$1"
}

VENDOR="$(api POST /vendors '{"name":"示例门禁厂商"}' | field id)"
PROJECT="$(api POST /projects '{"name":"西湖区文三路工地","code":"XH-2026-01","address":"杭州市西湖区文三路 1 号","coordinateSystem":"gcj02","fence":{"center":{"longitude":120.13,"latitude":30.28},"radiusMeters":800}}' | field id)"
OTHER_PROJECT="$(api POST /projects '{"name":"滨江区江南大道工地","fence":{"polygon":[[120.20,30.20],[120.21,30.20],[120.21,30.21],[120.20,30.21]]}}' | field id)"
TEAM="$(api POST "/projects/$PROJECT/teams" '{"name":"木工班","leader":"张建国"}' | field id)"
IDCARD="$("$PY" -c '
w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
body = "33010619850312001"
print(body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11])')"
FACE="$(base64 -w0 crates/platform/tests/data/face1.jpg)"
PERSON="$(api POST /workers "{\"idcardNo\":\"$IDCARD\",\"name\":\"李明\",\"phone\":\"13800138000\",\"facePhoto\":\"$FACE\",\"projectId\":\"$PROJECT\",\"teamId\":\"$TEAM\",\"trade\":\"木工\"}" | field personId)"
SN="ST-GATE-0001"
api POST /devices "{\"sn\":\"$SN\",\"vendorId\":\"$VENDOR\",\"projectId\":\"$PROJECT\",\"kind\":\"face\",\"direction\":\"in\",\"name\":\"1 号闸机\"}" >/dev/null
TASK="$(api GET "/devices/$SN/tasks" | field 'tasks[0].taskid')"
printf 'firmware package for the schemathesis run\n' >"$WORK/fw.bin"
FIRMWARE="$(curl -sS --fail-with-body -H "Authorization: Bearer $ADMIN_TOKEN" \
  -F "vendorId=$VENDOR" -F kind=face -F version=2.1.0 -F 'notes=修复夜间识别' -F "file=@$WORK/fw.bin" \
  "$BASE/api/v1/firmware" | field id)"
# A user the administrator's pass may change at will, and the project manager of PROJECT.
VICTIM="$(api POST /users '{"username":"st-auditor","displayName":"审计员","password":"审计-password-1","role":"auditor"}' | field id)"
PM_PASSWORD="项目-password-1"
api POST /users "{\"username\":\"st-pm\",\"displayName\":\"王经理\",\"password\":\"$PM_PASSWORD\",\"role\":\"project_manager\",\"projectIds\":[\"$PROJECT\"]}" >/dev/null
CSRF="$(curl -sS --fail-with-body -c "$WORK/jar" -H 'Content-Type: application/json' \
  --data-binary "{\"username\":\"st-pm\",\"password\":\"$PM_PASSWORD\"}" "$BASE/api/v1/login" | field csrfToken)"
PM_TOKEN_JSON="$(curl -sS --fail-with-body -b "$WORK/jar" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
  --data-binary '{"name":"schemathesis"}' "$BASE/api/v1/me/tokens")"
PM_TOKEN="$(field token <<<"$PM_TOKEN_JSON")"
# A second token of the manager's, for `DELETE /me/tokens/{id}` to find and revoke.
SPARE_TOKEN_ID="$(curl -sS --fail-with-body -b "$WORK/jar" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
  --data-binary '{"name":"spare"}' "$BASE/api/v1/me/tokens" | field id)"
# Attendance records with photos, through the device protocol (the simulator sets up its
# own vendor, project, workers and devices).
"$BIN" simulate --devices 2 --workers 3 --rate 120 --duration 3 --drain 30 \
  --admin-token "$ADMIN_TOKEN" --tcp "$TCP" --http "$BASE" --sn-prefix ST-SIM- \
  --data-dir "$WORK/sim" >"$WORK/simulate.log" 2>&1 \
  || { cat "$WORK/simulate.log" >&2; exit 1; }
RECORD="$(api GET '/attendance?limit=1' | field 'records[0].recordId')"
echo "schemathesis: seeded project $PROJECT, vendor $VENDOR, worker $PERSON, device $SN, task $TASK, firmware $FIRMWARE, attendance record $RECORD"

# --- schemathesis ---------------------------------------------------------------------------
# Path, query and body parameters that name objects take a seeded object's id half of the
# time (else anything), so handlers get past "not found" into their real work.
#
# Every check runs (schemathesis's default), but for two exclusions, each with its reason:
# - `positive_data_acceptance` wants every schema-valid request accepted, and this API
#   answers 422 to requests whose shape is right but whose meaning is not (an unknown vendor
#   or project id, an ID-card number with a wrong check character, a photo without exactly
#   one face, a wrong current password), which a schema cannot express.
# - `ensure_resource_availability` on getReconciliation only: schemathesis infers that every
#   task made by createTask has a reconciliation, but only a T_POST_DEVICE_PERSON task whose
#   upload the device has finished has one (404 until then, as documented).
# Checks are set here and not on the command line, where they would override the second.
cat >"$WORK/schemathesis.toml" <<EOF
# No state carried from one run to the next: the seed alone decides what is sent.
[cache]
enabled = false

[checks]
positive_data_acceptance = { enabled = false }

[[operations]]
include-operation-id = "getReconciliation"
checks = { ensure_resource_availability = { enabled = false } }

[dictionaries]
ids = { values = ["$PROJECT", "$OTHER_PROJECT", "$VENDOR", "$FIRMWARE", "$VICTIM", "$SPARE_TOKEN_ID"] }
sns = { values = ["$SN", "ST-SIM-0001"] }
persons = { values = ["$PERSON"] }
tasks = { values = ["$TASK"] }
projects = { values = ["$PROJECT", "$OTHER_PROJECT"] }
vendors = { values = ["$VENDOR"] }
teams = { values = ["$TEAM"] }

[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"path.sn" = { dictionary = "sns", probability = 0.5 }
"path.personId" = { dictionary = "persons", probability = 0.5 }
"path.taskid" = { dictionary = "tasks", probability = 0.5 }
"query.projectId" = { dictionary = "projects", probability = 0.5 }
"body.projectId" = { dictionary = "projects", probability = 0.5 }
"body.projectIds[*]" = { dictionary = "projects", probability = 0.5 }
"body.vendorId" = { dictionary = "vendors", probability = 0.5 }
"body.teamId" = { dictionary = "teams", probability = 0.5 }
"body.personIds[*]" = { dictionary = "persons", probability = 0.5 }
"body.sn" = { dictionary = "sns", probability = 0.5 }
EOF

FAILED=""
run_pass() {
  local who="$1" token="$2" examples="$3"
  shift 3
  echo "schemathesis: $who pass, $examples examples per operation, seed $ST_SEED"
  # From the scratch dir: hypothesis keeps a `.hypothesis/` in the working directory.
  if ! (cd "$WORK" && "$ST" --config-file "$WORK/schemathesis.toml" run "$BASE/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --seed "$ST_SEED" \
    --workers 2 \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    "$@"); then
    FAILED="$FAILED $who"
  fi
}

# The manager first: the administrator's pass rebinds devices and blacklists workers, which
# would hide the manager's objects from the manager. `DELETE /me/tokens/{id}` waits for the
# last pass: schemathesis learns the id of the token it runs with from `GET /me/tokens`, and
# revoking it would turn every later answer into a 401.
PM_EXAMPLES="$((ST_EXAMPLES / 4 > 0 ? ST_EXAMPLES / 4 : 1))"
run_pass project_manager "$PM_TOKEN" "$PM_EXAMPLES" --exclude-operation-id revokeToken
run_pass administrator "$ADMIN_TOKEN" "$ST_EXAMPLES"
run_pass "project_manager (revokeToken)" "$PM_TOKEN" "$PM_EXAMPLES" --include-operation-id revokeToken

if [ -n "$FAILED" ]; then
  echo "schemathesis: failures in the pass(es):$FAILED" >&2
  exit 1
fi
STATUS=0
echo "schemathesis: passed"
