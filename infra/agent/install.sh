#!/usr/bin/env bash
# Install the Host Checker agent as a systemd service on a Linux host (run as root).
#
#   HC_API_URL=https://.../api/ HC_REDIS_URL=rediss://:TOKEN@host:6379/0 \
#   HC_AGENT_NAME=Frankfurt HC_AGENT_LOCATION="Frankfurt, DE" HC_REGISTRATION_TOKEN=... \
#     sudo -E bash infra/agent/install.sh [SRC_DIR] [--no-start]
#
# SRC_DIR (default: the repository this script is in) holds agent/, chalicelib/targets.py,
# chalicelib/protocol.py, chalicelib/httpopts.py, requirements-agent.txt and infra/agent/. The agent runs as the
# unprivileged user `hostchecker` with CAP_NET_RAW only (ping/traceroute).
# Every HC_* variable in the environment is written to /etc/hostchecker/agent.env (0640); with
# none set, an existing agent.env is kept. Re-running upgrades the code and restarts the unit.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
SRC=""
START=1
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --no-start) START=0 ;;
    -*) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) SRC="$arg" ;;
  esac
done
[ -n "$SRC" ] || SRC="$(cd "$(dirname "$0")/../.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo -E bash $0)" >&2; exit 1; }
for f in agent/__main__.py chalicelib/targets.py chalicelib/protocol.py chalicelib/httpopts.py requirements-agent.txt \
         infra/agent/hostchecker-agent.service; do
  [ -e "$SRC/$f" ] || { echo "install.sh: $SRC/$f is missing (is $SRC a Host Checker checkout or bundle?)" >&2; exit 1; }
done

PYTHON="${PYTHON:-python3}"  # 3.11 or newer: requirements-agent.txt pins dnspython 2.9, which needs it
command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found; install Python >= 3.11" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "install.sh: $PYTHON is older than 3.11; set PYTHON=python3.11" >&2; exit 1; }

APP=/opt/hostchecker/app
VENV=/opt/hostchecker/venv
ETC=/etc/hostchecker

echo "[install] user hostchecker"
id hostchecker >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/lib/hostchecker-agent \
  --shell /usr/sbin/nologin hostchecker

echo "[install] code -> $APP"
rm -rf "$APP.new"
mkdir -p "$APP.new/chalicelib"
cp -r "$SRC/agent" "$APP.new/agent"
cp "$SRC/chalicelib/targets.py" "$SRC/chalicelib/protocol.py" "$SRC/chalicelib/httpopts.py" "$APP.new/chalicelib/"
: > "$APP.new/chalicelib/__init__.py"   # only the pure modules; never the Lambda-side package
find "$APP.new" -name __pycache__ -type d -prune -exec rm -rf {} +
rm -rf "$APP.old"; [ -d "$APP" ] && mv "$APP" "$APP.old"; mv "$APP.new" "$APP"; rm -rf "$APP.old"

echo "[install] venv -> $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --disable-pip-version-check -q --require-hashes -r "$SRC/requirements-agent.txt"

echo "[install] settings -> $ETC/agent.env"
mkdir -p "$ETC"
if env | grep -q '^HC_'; then
  umask 027
  { echo "# written by infra/agent/install.sh on $(date -u +%FT%TZ)"
    env | grep '^HC_' | sort | while IFS='=' read -r k v; do printf '%s=%s\n' "$k" "$v"; done
  } > "$ETC/agent.env.new"
  mv "$ETC/agent.env.new" "$ETC/agent.env"
elif [ ! -f "$ETC/agent.env" ]; then
  echo "install.sh: no HC_* variables given and no $ETC/agent.env yet (see --help)" >&2; exit 1
fi
chown root:hostchecker "$ETC/agent.env"; chmod 0640 "$ETC/agent.env"

echo "[install] systemd unit"
install -m 0644 "$SRC/infra/agent/hostchecker-agent.service" /etc/systemd/system/hostchecker-agent.service
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable hostchecker-agent.service
  if [ "$START" -eq 1 ]; then
    systemctl restart hostchecker-agent.service
    systemctl --no-pager --lines=5 status hostchecker-agent.service || true
  fi
else
  echo "[install] systemd is not running here; unit installed but not started"
fi
echo "[install] done"
