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

# 4. read the task from the agent's stream, as the agent would (consumer group "agent")
ENTRY=$(redis-cli -u "$REDIS_URL" --raw XREADGROUP GROUP agent by-hand COUNT 1 STREAMS "hc:tasks:$AGENT_ID" '>')
TASK_JSON=$(echo "$ENTRY" | grep '^{')
TASK_ID=$(echo "$TASK_JSON" | json "['task_id']"); echo "task $TASK_ID"
ENTRY_ID=$(echo "$ENTRY" | grep -E '^[0-9]+-[0-9]+$')

# 5. start it
curl -sf -X POST "$API_URL/api/tasks/$TASK_ID/start" -H "X-Agent-Token: $TOKEN"; echo

# 6. post its result, then acknowledge the stream entry
curl -sf -X POST "$API_URL/api/tasks/$TASK_ID/result" -H 'Content-Type: application/json' \
  -H "X-Agent-Token: $TOKEN" \
  -d '{"success": true, "duration_ms": 12.3, "address": "93.184.215.14", "data": {"address": "93.184.215.14", "port": 80, "connect_ms": 12.3}, "error": null}'; echo
redis-cli -u "$REDIS_URL" XACK "hc:tasks:$AGENT_ID" agent "$ENTRY_ID" >/dev/null

# 7. the check is completed
curl -sf "$API_URL/api/checks/$CHECK_ID" | json "['status']"
