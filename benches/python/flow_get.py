"""GET /v1/flows/{flow} as most teams would write it: Python + boto3 under awslambdaric.

The same DynamoDB calls as the Rust `flow-get` (tests/costs.rs): the flow's head item, then
its current version (the ACTIVE one, else the newest), both strongly consistent GetItems on
the table the template names. The client is built at init, as AWS recommends.
"""

import json
import os

import boto3

TABLE = os.environ["FLOWLINE_TABLE"]
dynamodb = boto3.client("dynamodb")


def _current(head):
    versions = [v["M"] for v in head["doc"]["M"]["versions"]["L"]]
    for v in versions:
        if v["status"]["S"] == "ACTIVE":
            return int(v["version"]["N"])
    return max(int(v["version"]["N"]) for v in versions)


def handler(event, context):
    organization = event["requestContext"]["authorizer"]["lambda"]["organization_id"]
    slug = event["pathParameters"]["flow"]
    pk = f"ORG#{organization}#FLOW#{slug}"
    head = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "HEAD"}}, ConsistentRead=True).get("Item")
    if head is None:
        return {"statusCode": 404, "headers": {"content-type": "application/json"},
                "body": json.dumps({"error": "Not found", "code": "NOT_FOUND"})}
    version = _current(head)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": f"V#{version:08d}"}}, ConsistentRead=True)["Item"]
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"slug": slug, "version": version, "rev": item["rev"]["N"]})}
