#!/usr/bin/env bash
# The whole lifecycle of a check by hand, with curl and redis-cli, against `make run`:
#   source .local/stack.env && bash docs/api-lifecycle.sh
# (Needs API_URL, REDIS_URL and REGISTRATION_TOKEN; jq is not required.)
set -euo pipefail
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. register an agent (the token is shown only here)
AGENT=$(curl -sf -X POST "$API_URL/api/agents/register" -H 'Content-Type: application/json' \
  -H "X-Registration-Token: $REGISTRATION_TOKEN" \
  -d '{"name": "by-hand", "location": "My Desk", "replace": true}')
AGENT_ID=$(echo "$AGENT" | json "['agent_id']"); TOKEN=$(echo "$AGENT" | json "['api_token']")
echo "agent $AGENT_ID"

# 2. heartbeat
curl -sf -X POST "$API_URL/api/agents/heartbeat" -H 'Content-Type: application/json' \
  -H "X-Agent-Token: $TOKEN" -d '{"current_tasks": 0, "version": "by-hand"}'; echo

# 3. create a check that only this agent runs
CHECK=$(curl -sf -X POST "$API_URL/api/checks" -H 'Content-Type: application/json' \
  -d "{\"target\": \"example.com\", \"checks\": [\"tcp\"], \"agents\": [\"$AGENT_ID\"]}")
CHECK_ID=$(echo "$CHECK" | json "['check_id']"); echo "check $CHECK_ID"

# 4. read the task from the agent's stream, as the agent would (consumer group "agent");
#    pick this check's entry (a stream may hold older ones from earlier runs)
ENTRIES=$(redis-cli -u "$REDIS_URL" --no-auth-warning --raw XREADGROUP GROUP agent by-hand COUNT 100 \
  STREAMS "hc:tasks:$AGENT_ID" '>')
read -r ENTRY_ID TASK_ID < <(echo "$ENTRIES" | python3 -c "
import json, sys
lines = sys.stdin.read().split()
for i, line in enumerate(lines):
    if line.startswith('{') and json.loads(line)['check_id'] == '$CHECK_ID':
        print(lines[i - 2], json.loads(line)['task_id'])")
echo "task $TASK_ID (stream entry $ENTRY_ID)"

# 5. start it
curl -sf -X POST "$API_URL/api/tasks/$TASK_ID/start" -H "X-Agent-Token: $TOKEN"; echo

# 6. post its result, then acknowledge the stream entry
curl -sf -X POST "$API_URL/api/tasks/$TASK_ID/result" -H 'Content-Type: application/json' \
  -H "X-Agent-Token: $TOKEN" \
  -d '{"success": true, "duration_ms": 12.3, "address": "93.184.215.14", "data": {"address": "93.184.215.14", "port": 80, "connect_ms": 12.3}, "error": null}'; echo
redis-cli -u "$REDIS_URL" --no-auth-warning XACK "hc:tasks:$AGENT_ID" agent "$ENTRY_ID" >/dev/null

# 7. the check is completed
curl -sf "$API_URL/api/checks/$CHECK_ID" | json "['status']"
