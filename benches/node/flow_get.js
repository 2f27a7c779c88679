// GET /v1/flows/{flow} as most teams would write it: Node + @aws-sdk/client-dynamodb, with a
// minimal Runtime API loop like the managed Node runtime's (next → handler → response). The
// same DynamoDB calls as the Rust flow-get: the head item, then the current version.
"use strict";
const http = require("node:http");
const { DynamoDBClient, GetItemCommand } = require("@aws-sdk/client-dynamodb");

const TABLE = process.env.FLOWLINE_TABLE;
const dynamodb = new DynamoDBClient({});

function current(head) {
  const versions = head.doc.M.versions.L.map((v) => v.M);
  const active = versions.find((v) => v.status.S === "ACTIVE");
  if (active) return Number(active.version.N);
  return Math.max(...versions.map((v) => Number(v.version.N)));
}

async function handler(event) {
  const organization = event.requestContext.authorizer.lambda.organization_id;
  const slug = event.pathParameters.flow;
  const pk = `ORG#${organization}#FLOW#${slug}`;
  const key = (sk) => ({ pk: { S: pk }, sk: { S: sk } });
  const head = (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: key("HEAD"), ConsistentRead: true }))).Item;
  if (!head) {
    return { statusCode: 404, headers: { "content-type": "application/json" }, body: JSON.stringify({ error: "Not found", code: "NOT_FOUND" }) };
  }
  const version = current(head);
  const sk = `V#${String(version).padStart(8, "0")}`;
  const item = (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: key(sk), ConsistentRead: true }))).Item;
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ slug, version, rev: item.rev.N }) };
}

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent, headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

(async function loop() {
  for (;;) {
    const next = await request("GET", "/2018-06-01/runtime/invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    try {
      const result = await handler(JSON.parse(next.body));
      await request("POST", `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(result));
    } catch (err) {
      await request("POST", `/2018-06-01/runtime/invocation/${id}/error`, JSON.stringify({ errorMessage: String(err), errorType: "Error" }));
    }
  }
})();
