"""Targets the policy must refuse when private targets are not allowed (DESIGN §6, issue 16).

Shared by the SSRF suite (tests/integration/test_ssrf.py), which sends each to the API and
to the agent's checks, and the fuzzing suite (tests/integration/test_api_fuzz.py), which
mixes them into the targets it generates. Every entry is refused as `blocked_target`.
"""

from __future__ import annotations

# Loopback in every spelling a resolver accepts, including the IDNA-mapped ones of defect 7
# (fullwidth digits and dots, ideographic full stops) and the IPv6 forms that embed it.
LOOPBACK = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "017700000001",
    "127.0.0.1.",
    "０ｘ７ｆ０００００１",
    "１２７．０．０．１",
    "127。0。0。1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::ffff:0:127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b:1::7f00:1]",
    "[2002:7f00:1::]",
    "[::127.0.0.1]",
]
METADATA = ["169.254.169.254", "0xa9fea9fe", "2852039166", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]"]
PRIVATE_AND_RESERVED = [
    "0.0.0.0",
    "0",
    "[::]",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "[ff02::1]",
]
LOCAL_NAMES = [
    "localhost",
    "LOCALHOST",
    "localhost.",
    "foo.localhost",
    "metadata.google.internal",
    "printer.local",
    "router.home.arpa",
]
URLS = [
    "http://127.0.0.1/",
    "HTTP://127.0.0.1:8080/x?y=1",
    "http://[::1]:8080/",
    "https://2130706433/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b:1::7f00:1]/",
    "http://localhost:80/",
    "http://０ｘ７ｆ０００００１/",
    "127.0.0.1:22",
    "[::1]:22",
]
TARGETS = LOOPBACK + METADATA + PRIVATE_AND_RESERVED + LOCAL_NAMES + URLS
# options.dns.resolver values the API refuses (defect 7) and the agent refuses again.
RESOLVERS = ["127.0.0.1", "169.254.169.254", "::1", "0x7f.1", "10.0.0.53", "localhost", "[::ffff:127.0.0.1]"]
