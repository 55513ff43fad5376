"""`hostchecker`: the command-line client of the Host Checker API (issue 14).

It talks to the API over HTTP (and its WebSocket for live results) only; of the
server's code it uses just the pure protocol module, for check types and the
options' names, defaults and bounds (cli/protocol.py).
"""
