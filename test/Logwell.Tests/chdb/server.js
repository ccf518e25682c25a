// ClickHouse's HTTP interface, the part Logwell uses, over chdb (a current ClickHouse engine in this process), so the
// tests run the same SQL against a current release as against Debian's 18.16 server.
//   POST /?database=DB[&query=Q][&SETTING=VALUE...]  body: the statement, or with `query` the data that follows it
//   GET /ping                                         "Ok."
// Errors answer 500 with ClickHouse's own text ("Code: N. DB::Exception: ..."). Usage: node server.js PORT DATA_DIR
// [OWNER_PID]: with an owner, the server ends within a second of it (a test run that ends leaves no server behind).
"use strict";
const http = require("http");
const { Session } = require("chdb");

const [port, dir, owner] = process.argv.slice(2);
if (owner) {
  setInterval(() => {
    try {
      process.kill(Number(owner), 0);
    } catch {
      process.exit(0);
    }
  }, 1000).unref();
}
const session = new Session(dir);
const known = new Set();
const current = { database: null, settings: new Map() };

function run(sql) {
  return session.query(sql, "JSONEachRow");
}

http.createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (url.pathname === "/ping") {
    response.end("Ok.\n");
    return;
  }
  const chunks = [];
  request.on("data", chunk => chunks.push(chunk));
  request.on("end", () => {
    try {
      const body = Buffer.concat(chunks).toString("utf8");
      const database = url.searchParams.get("database") || "default";
      const query = url.searchParams.get("query");
      const settings = [];
      for (const [name, value] of url.searchParams) {
        if (name !== "database" && name !== "query") {
          settings.push([name, value]);
        }
      }
      // The session keeps its database and settings: each is sent again only when it changes.
      if (!known.has(database)) {
        run(`CREATE DATABASE IF NOT EXISTS ${database}`);
        known.add(database);
      }
      if (current.database !== database) {
        run(`USE ${database}`);
        current.database = database;
      }
      for (const [name, value] of settings) {
        if (current.settings.get(name) !== value) {
          run(`SET ${name} = ${/^[0-9]+$/.test(value) ? value : "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'"}`);
          current.settings.set(name, value);
        }
      }
      const output = run(query === null ? body : query + "\n" + body);
      response.writeHead(200, { "Content-Type": "text/plain; charset=UTF-8" });
      response.end(output ?? "");
    } catch (e) {
      const text = String(e && e.message ? e.message : e);
      response.writeHead(/Code: (60|81)\b/.test(text) ? 404 : 500, { "Content-Type": "text/plain; charset=UTF-8" });
      response.end(text);
    }
  });
}).listen(Number(port), "127.0.0.1", () => console.log(`chdb listening on ${port}`));
