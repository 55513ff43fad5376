#!/bin/sh
# config.json tells the browser where the API is; it is per deployment, so it is written here.
set -eu
mkdir -p /run/hostchecker-ui
printf '{"apiUrl": "%s"}\n' "${UI_API_URL:-http://127.0.0.1:8000}" > /run/hostchecker-ui/config.json
exec "$@"
