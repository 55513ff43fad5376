"""The demo DNS server needs one port number free on both UDP and TCP.

With port 0 the kernel picks the UDP port, and that number can already be held on TCP by
another listener or connection (CI once failed a whole module this way). The server must then
try another pair rather than fail."""

from __future__ import annotations

import errno
import socket

import pytest

from scripts.localcloud import demosite


@pytest.fixture
def tcp_taken():
    """A TCP port held by a listener, with the same UDP number free."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    yield held.getsockname()[1]
    held.close()


def test_a_udp_port_already_taken_on_tcp_is_given_back_and_another_tried(monkeypatch, tcp_taken):
    real_socket = socket.socket
    udp_binds = []

    class FirstUdpLandsOnTheHeldPort(real_socket):
        def bind(self, address):
            if self.type == socket.SOCK_DGRAM and address[1] == 0 and not udp_binds:
                address = (address[0], tcp_taken)
            if self.type == socket.SOCK_DGRAM:
                udp_binds.append(address[1])
            return super().bind(address)

    monkeypatch.setattr(demosite.socket, "socket", FirstUdpLandsOnTheHeldPort)
    server = demosite.DNSServer("127.0.0.1", 0, demosite.default_zone("example.test", "198.18.7.7"))
    try:
        assert udp_binds[0] == tcp_taken, "the first try did not collide, so the test proves nothing"
        assert len(udp_binds) >= 2
        assert server.port != tcp_taken
        assert server.tcp.getsockname()[1] == server.udp.getsockname()[1] == server.port
    finally:
        server.stop()


def test_an_explicit_port_taken_on_tcp_is_an_error_not_a_silent_move(tcp_taken):
    with pytest.raises(OSError) as raised:
        demosite.DNSServer("127.0.0.1", tcp_taken, {})
    assert raised.value.errno == errno.EADDRINUSE
