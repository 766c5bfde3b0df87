#!/usr/bin/env python3
"""Subscribe to a Sightline pipeline and print one JSON line per message.

The lines are exactly what `sightline subscribe` prints:
    {"topic":"stats/cam1/","header":{...the JSON header as sent...}}
with "vector":[...] appended when --vectors is given and the message carries one.

Setup:  python3 -m pip install pyzmq
Usage:  python3 Samples/subscriber.py tcp://127.0.0.1:5555 [--topic stats/] [--vectors]
                [--count N] [--idle-timeout S] [--until-end]
                [--curve-key NAME.key_secret --curve-server-key SERVER.key]

A CURVE-protected pipeline (curve_secret_key on its publish node) admits only subscribers whose
public key is in its curve_clients folder; create the pair with `sightline keys generate NAME`.
Gaps in a topic's seq numbers (messages this subscriber missed) are reported on stderr.
"""
import argparse
import json
import struct
import sys

import zmq
import zmq.auth


def vector_of(header, payload):
    info = header.get("payload") or {}
    dtype = info.get("dtype")
    if payload is None or dtype is None:
        return None
    if dtype == "float32":
        return list(struct.unpack("<%df" % (len(payload) // 4), payload))
    if dtype == "float16":
        return list(struct.unpack("<%de" % (len(payload) // 2), payload))
    return None


def line_of(topic, header_bytes, payload, include_vector):
    # The header is printed byte for byte as it arrived, so every subscriber prints the same.
    line = '{"topic":' + json.dumps(topic) + ',"header":' + header_bytes.decode("utf-8")
    if include_vector:
        vector = vector_of(json.loads(header_bytes), payload)
        if vector is not None:
            line += ',"vector":[' + ",".join("%.9g" % v for v in vector) + "]"
    return line + "}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint", help="e.g. tcp://127.0.0.1:5555 (or sub+connect:tcp://...)")
    parser.add_argument("--topic", action="append", default=[], help="topic prefix (repeatable); default: all")
    parser.add_argument("--vectors", action="store_true", help="decode vector payloads")
    parser.add_argument("--count", type=int, help="exit after N messages")
    parser.add_argument("--idle-timeout", type=float, help="exit after S seconds without a message")
    parser.add_argument("--until-end", action="store_true", help="exit once every source seen has ended")
    parser.add_argument("--curve-key", help="our CURVE certificate with its secret key (NAME.key_secret)")
    parser.add_argument("--curve-server-key", help="the publisher's public CURVE certificate (NAME.key)")
    parser.add_argument("--max-message-size", type=int, default=256 << 20, help="drop the connection on a larger message")
    args = parser.parse_args()
    if (args.curve_key is None) != (args.curve_server_key is None):
        parser.error("--curve-key and --curve-server-key go together")

    endpoint = args.endpoint
    bind = False
    if "+" in endpoint.split(":", 1)[0]:
        role_action, endpoint = endpoint.split(":", 1)
        bind = role_action.endswith("+bind")

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.MAXMSGSIZE, args.max_message_size)
    if args.curve_key:
        public, secret = zmq.auth.load_certificate(args.curve_key)
        if secret is None:
            parser.error("%s holds no secret key (use NAME.key_secret)" % args.curve_key)
        server_public, _ = zmq.auth.load_certificate(args.curve_server_key)
        socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = public, secret, server_public
    for topic in args.topic or [""]:
        socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
    (socket.bind if bind else socket.connect)(endpoint)

    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    received = 0
    open_sources, ended = set(), set()
    last_seq, lost = {}, {}
    while True:
        timeout = None if args.idle_timeout is None else int(args.idle_timeout * 1000)
        if not poller.poll(timeout):
            break
        parts = socket.recv_multipart()
        topic, header_bytes = parts[0].decode("utf-8"), parts[1]
        payload = parts[2] if len(parts) > 2 else None
        sys.stdout.write(line_of(topic, header_bytes, payload, args.vectors) + "\n")
        sys.stdout.flush()
        received += 1
        header = json.loads(header_bytes)
        seq = header.get("seq")
        if isinstance(seq, int):
            if topic in last_seq and seq > last_seq[topic] + 1:
                lost[topic] = lost.get(topic, 0) + seq - last_seq[topic] - 1
            last_seq[topic] = seq
        source = header.get("source")
        if source and source != "_pipeline":
            open_sources.add(source)
            if header.get("data", {}).get("event") == "end_of_stream":
                ended.add(source)
        if args.count is not None and received >= args.count:
            break
        if args.until_end and open_sources and ended >= open_sources:
            break
    for topic in sorted(lost):
        sys.stderr.write("subscriber: %d message(s) lost on %s (gaps in seq)\n" % (lost[topic], topic))
    socket.close(linger=0)
    context.term()


if __name__ == "__main__":
    main()
