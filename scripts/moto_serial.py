"""moto_server, one request at a time.

moto's DynamoDB TransactWriteItems deep-copies the table for its rollback while other request
threads may be changing it ("dictionary changed size during iteration" -> HTTP 500). Real
DynamoDB has no such race, so the tests serialize requests to the emulator instead of working
around it in Flowline. Connections stay concurrent (threaded server, HTTP/1.1 keep-alive).
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # Consume the whole answer inside the lock: moto builds it lazily.
            return list(moto(environ, start_response))

    run_simple(args.host, args.port, serial, threaded=True)


if __name__ == "__main__":
    main()
