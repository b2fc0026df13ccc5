// SPDX-License-Identifier: MIT
// Hold idle TCP connections open from node: node hold.js server|client HOST PORT
const net = require("net");
const [mode, host, port] = process.argv.slice(2);
const held = [];
setTimeout(() => process.exit(0), 600000);
if (mode === "server") {
  net.createServer((conn) => held.push(conn)).listen(Number(port), host);
} else {
  const conn = net.connect(Number(port), host);
  conn.on("data", () => console.log("data"));
  conn.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
  conn.on("close", () => process.exit(0));
}
