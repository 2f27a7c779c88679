"""moto_server, one request at a time, with DynamoDB's transaction idempotency.

Two of moto's costs grow with the whole table and are cut to what DynamoDB does (below), so the
suite's speed does not depend on how much earlier tests wrote.

moto's DynamoDB TransactWriteItems deep-copies the table for its rollback while other request
threads may be changing it ("dictionary changed size during iteration" -> HTTP 500). Real
DynamoDB has no such race, so the tests serialize requests to the emulator instead of working
around it in Flowline. Connections stay concurrent (threaded server, HTTP/1.1 keep-alive).

That deep copy also makes each transaction cost O(items in it x table size): with thousands of
items in the table a transaction takes seconds. `cheap_rollback` replaces the copy with a
journal of the items the transaction touches (and of the table's stream), restored the same way
when it is cancelled; the store conformance suite checks that rollback on every run.

With or without it, a transaction can outlast the SDK's 4 s attempt timeout on a busy emulator,
and the SDK sends it again. Real DynamoDB answers
such a retry from its `ClientRequestToken` (a transaction that succeeded is not applied twice
within 10 minutes; the same token with other parameters is IdempotentParameterMismatch); moto
ignores the token and would fail the retry's conditions on the first attempt's own writes. So
this wrapper keeps DynamoDB's promise: successful TransactWriteItems answers, by token.
"""

import argparse
import hashlib
import io
import json
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"
IDEMPOTENCY_WINDOW_S = 600


def cheap_rollback() -> None:
    """TransactWriteItems without copying whole tables (see the module's note)."""
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    def deepcopy(value, memo=None):
        # Only the rollback copies tables; the journal below replaces it.
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        before, streams = {}, {}
        for entry in transact_items:
            op = next(iter(entry.values())) if isinstance(entry, dict) and entry else {}
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            attrs = (op.get("Key") or op.get("Item") or {}) if table is not None else {}
            if table is None or table.hash_key_attr not in attrs:
                continue
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = None
            if table.range_key_attr is not None and table.range_key_attr in attrs:
                range_key = DynamoType(attrs[table.range_key_attr])
            where = (op["TableName"], hash_key, range_key)
            if where not in before:
                before[where] = copy.deepcopy(table.get_item(hash_key, range_key))
            if table.stream_shard is not None:
                streams.setdefault(op["TableName"], len(table.stream_shard.items))
        try:
            return original(self, transact_items)
        except Exception:
            for (name, hash_key, range_key), item in before.items():
                table = self.tables[name]
                if range_key is None:
                    if item is None:
                        table.items.pop(hash_key, None)
                    else:
                        table.items[hash_key] = item
                elif item is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
            for name, length in streams.items():
                del self.tables[name].stream_shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def partition_queries() -> None:
    """A Query of a table's key reads that partition, not every item of the table.

    moto's Query sorts the whole table (`all_items`) and keeps the partition's items: O(table)
    for each call, seconds per Query once the suite has written tens of thousands of items.
    Real DynamoDB reads the partition alone. Index queries are left as moto does them.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or self.range_key_attr is None:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    cheap_rollback()
    partition_queries()
    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()
    # token -> (when, request digest, status, headers, body)
    answered = {}

    def call_moto(environ):
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        # Consume the whole answer inside the lock: moto builds it lazily.
        body = b"".join(moto(environ, start_response))
        return captured["status"], captured["headers"], body

    def serial(environ, start_response):
        with lock:
            if environ.get("HTTP_X_AMZ_TARGET") != TRANSACT_WRITE:
                status, headers, body = call_moto(environ)
                start_response(status, headers)
                return [body]
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(request)
            try:
                parsed = json.loads(request)
            except ValueError:
                parsed = {}
            token = parsed.pop("ClientRequestToken", None)
            digest = hashlib.sha256(json.dumps(parsed, sort_keys=True).encode()).hexdigest()
            now = time.monotonic()
            for old in [t for t, seen in answered.items() if now - seen[0] > IDEMPOTENCY_WINDOW_S]:
                del answered[old]
            if token is not None and token in answered:
                _, seen_digest, status, headers, body = answered[token]
                if seen_digest != digest:
                    status = "400 Bad Request"
                    headers = [("Content-Type", "application/x-amz-json-1.0")]
                    body = json.dumps({
                        "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                        "message": "The request uses the same client token as a previous, but non-identical request.",
                    }).encode()
                start_response(status, headers)
                return [body]
            status, headers, body = call_moto(environ)
            if token is not None and status.startswith("200"):
                answered[token] = (now, digest, status, headers, body)
            start_response(status, headers)
            return [body]

    run_simple(args.host, args.port, serial, threaded=True)


if __name__ == "__main__":
    main()
