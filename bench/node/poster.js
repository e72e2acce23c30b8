// Open-loop HTTP load for bench/ingest.py (`--generator node`): the Python generator cost ~1.3-2 ms of CPU per
// post on the machine it measures; this one costs a fraction of that, so the stack under test keeps the cores.
// Reads one JSON job per stdin line: {"rate": posts/s, "maxInFlight": n, "posts": [{"url", "token", "body"}]},
// posts them on schedule (keep-alive, plain node:http) and answers one JSON line:
// {"results": [[status, sentMs, answeredMs], ...], "offeredMs": ms}, status -1 for a connection error.
"use strict";
const http = require("node:http");
const readline = require("node:readline");

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function post(job, result) {
  return new Promise((resolve) => {
    const body = Buffer.from(JSON.stringify(job.body));
    const req = http.request(
      job.url,
      {
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${job.token}`,
          "content-type": "application/json",
          "content-length": body.length,
        },
        timeout: 30000,
      },
      (res) => {
        res.resume(); // the answer's body is not needed, only its status
        res.on("end", () => {
          result[0] = res.statusCode;
          result[2] = performance.now();
          resolve();
        });
      },
    );
    req.on("error", () => {
      result[0] = -1;
      result[2] = performance.now();
      resolve();
    });
    req.on("timeout", () => req.destroy());
    req.end(body);
  });
}

async function run(job) {
  const results = [];
  const pending = [];
  let inFlight = 0;
  const start = performance.now();
  let n = 0;
  while (n < job.posts.length) {
    const due = Math.min(job.posts.length, Math.floor(((performance.now() - start) / 1000) * job.rate) + 1);
    for (; n < due; n++) {
      const result = [0, performance.now(), 0];
      results.push(result);
      if (inFlight >= job.maxInFlight) {
        result[0] = 0; // skipped: the generator's own limit
        continue;
      }
      inFlight++;
      pending.push(post(job.posts[n], result).then(() => inFlight--));
    }
    await new Promise((r) => setTimeout(r, 1)); // catch up to the schedule in 1 ms ticks
  }
  const offeredMs = performance.now() - start;
  await Promise.all(pending);
  return { results, offeredMs };
}

async function main() {
  console.log("ready");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim()) console.log(JSON.stringify(await run(JSON.parse(line))));
  }
}

main();
