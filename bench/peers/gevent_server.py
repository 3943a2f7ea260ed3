"""Upcase peer: a gevent StreamServer, one greenlet per connection.

Usage: /usr/bin/python3 gevent_server.py PORT   (0 picks a free port)
"""
import sys

from gevent.server import StreamServer


def handle(sock, _address):
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            # bytes.upper() touches only ASCII a-z, so binary data is safe.
            sock.sendall(data.upper())
    except OSError:
        # ECONNRESET, EPIPE and friends end this connection only.
        pass
    finally:
        sock.close()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = StreamServer(("127.0.0.1", port), handle)
    server.start()
    sys.stdout.write("listening %d\n" % server.address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
