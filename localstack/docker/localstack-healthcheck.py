"""LocalStack's compose healthcheck: healthy once the READY init scripts have all succeeded.

/_localstack/init/ready answers 200 as soon as the gateway is up; the stack's CloudFormation
deployment (init/ready.d) is done only when every listed script reports SUCCESSFUL.
"""

import json
import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:4566/_localstack/init/ready", timeout=3) as resp:
        doc = json.load(resp)
except (OSError, ValueError) as exc:
    sys.exit(f"localstack not ready: {exc}")
scripts = doc.get("scripts") or []
if not doc.get("completed") or not scripts or any(s.get("state") != "SUCCESSFUL" for s in scripts):
    sys.exit(f"localstack init not done: {json.dumps(scripts)}")
