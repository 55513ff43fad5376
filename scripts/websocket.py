"""The local API Gateway WebSocket API (scripts/localcloud/websocket.py): `python -m scripts.websocket --help`."""

import sys

from scripts.localcloud.websocket import main

if __name__ == "__main__":
    sys.exit(main())
