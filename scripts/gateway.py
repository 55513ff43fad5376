"""The local API Gateway + Lambda stand-in (scripts/localcloud/gateway.py): `python -m scripts.gateway --help`."""

import sys

from scripts.localcloud.gateway import main

if __name__ == "__main__":
    sys.exit(main())
