#!/bin/sh
# With NET_RAW in the bounding set (docker's default, or --cap-add NET_RAW after --cap-drop ALL)
# the interpreter copy that carries cap_net_raw runs the agent, so ping and traceroute work.
# Without it that copy could not even start (exec fails), so the venv's plain interpreter runs
# and the agent reports ping and traceroute as unavailable. Both are the venv's interpreters.
set -eu
bounding=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
python=/opt/venv/bin/python
if [ $(( 0x$bounding >> 13 & 1 )) -eq 1 ]; then  # bit 13 is CAP_NET_RAW
    python=/opt/venv/bin/python-netraw
fi
exec "$python" -m agent "$@"
