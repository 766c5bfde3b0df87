#!/usr/bin/env python3
"""A minimal WebSocket client (RFC 6455) on the standard library, for the live-view test:
connects to ws://HOST:PORT/PATH, prints each text message on its own line, and exits after
COUNT messages or TIMEOUT seconds (status 1 when fewer arrived). Frames from a server are not
masked; ours to it (the closing frame) are, as the RFC requires of clients."""
import base64, os, socket, struct, sys, time

def main():
    url, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    assert url.startswith("ws://")
    hostport, _, path = url[5:].partition("/")
    host, _, port = hostport.partition(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("ws_client: closed during the handshake")
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit("ws_client: no upgrade: " + head.decode(errors="replace").splitlines()[0])
    deadline = time.time() + timeout
    received = 0

    def need(n):
        nonlocal buffer
        while len(buffer) < n:
            sock.settimeout(max(0.01, deadline - time.time()))
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buffer += chunk
        out, buffer = buffer[:n], buffer[n:]
        return out

    try:
        while received < count and time.time() < deadline:
            first, second = need(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                length = struct.unpack(">H", need(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", need(8))[0]
            payload = need(length)
            if opcode == 1:
                print(payload.decode(), flush=True)
                received += 1
            elif opcode == 8:
                break
    except (socket.timeout, EOFError):
        pass
    mask = os.urandom(4)
    sock.sendall(bytes([0x88, 0x80]) + mask)  # close, masked, empty
    sock.close()
    sys.exit(0 if received >= count else 1)

main()
