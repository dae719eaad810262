// The Webhooks pages: create a subscription (a bad URL first), see deliveries arrive at a local
// receiver with a valid signature, make the receiver fail until batches become dead letters,
// fix it, replay them from the page, then pause, resume and delete.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServe, launch, newPage, login, shot, api, sandbox, until } from "../lib/harness.mjs";

let server, browser, cid, configDir, receiver;

/**
 * A webhook receiver on 127.0.0.1: records every request; answers 200, or 500 with
 * `Retry-After: 0` while `failing` (so the service's 8 attempts run without backoff).
 */
function startReceiver() {
  const r = { requests: [], failing: false };
  r.server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      r.requests.push({ headers: req.headers, body, failed: r.failing });
      if (r.failing) {
        res.writeHead(500, { "retry-after": "0", "content-type": "text/plain" });
        res.end("receiver is down for the test");
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      }
    });
  });
  return new Promise((resolve) => {
    r.server.listen(0, "127.0.0.1", () => {
      r.url = `http://127.0.0.1:${r.server.address().port}/hooks/lastpass`;
      resolve(r);
    });
  });
}

/** Event ids of the requests the receiver accepted (or refused). */
function ids(requests) {
  return new Set(requests.flatMap((q) => JSON.parse(q.body).events.map((e) => e.id)));
}

before(async () => {
  configDir = mkdtempSync(join(tmpdir(), "lpbridge-e2e-webhooks-"));
  const config = join(configDir, "lpbridge.toml");
  // Collect every second, so deliveries follow activity quickly.
  writeFileSync(config, "events_poll_secs = 1\n");
  server = await startServe({ args: ["--config", config] });
  browser = await launch();
  receiver = await startReceiver();
  const conns = await api(server, "GET", "/connections");
  cid = conns.body.data.find((c) => c.id === "sandbox").cid;
});
after(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.server.close();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

async function activity() {
  const r = await sandbox(server, "POST", "/activity", { cid, minutes: 1, per_hour: 1800 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

const WANTED = ["Authentication", "User lifecycle", "Admin", "Groups", "Shared folders", "Vault items", "Policy"];

test("a webhook is created, delivers signed events, dead-letters while the receiver fails, and replays", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.getByRole("link", { name: "Webhooks", exact: true }).click();
  await page.getByRole("heading", { name: "Webhooks", level: 1 }).waitFor();
  await page.locator("#no-webhooks").waitFor();

  // A URL that is not one: the error is next to the field, the input is kept, nothing is made.
  await page.getByLabel("Receiver URL", { exact: true }).fill("not a url");
  await page.getByRole("button", { name: "Add webhook" }).click();
  const urlError = page.locator("#f-url-error");
  await urlError.waitFor();
  assert.match(await urlError.innerText(), /Not a URL/i);
  assert.equal(await page.getByLabel("Receiver URL", { exact: true }).getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel("Receiver URL", { exact: true }).inputValue(), "not a url");
  assert.deepEqual((await api(server, "GET", "/webhooks")).body.data, []);
  // A scheme other than http(s) is refused too.
  await page.getByLabel("Receiver URL", { exact: true }).fill("ftp://127.0.0.1/x");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await until("the scheme error", async () => /http or https/.test(await page.locator("#f-url-error").innerText()));
  assert.deepEqual((await api(server, "GET", "/webhooks")).body.data, []);
  page.errors = page.errors.filter((e) => !/status of 422/.test(e));

  // The real receiver, every category but the API's own calls, and a secret made for us.
  await page.getByLabel("Receiver URL", { exact: true }).fill(receiver.url);
  for (const c of WANTED) await page.getByLabel(c, { exact: true }).check();
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByRole("heading", { name: "Webhook created" }).waitFor();
  const secret = (await page.locator("#new-secret").innerText()).trim();
  assert.match(secret, /^whsec_[0-9a-f]{48}$/);
  const listed = (await api(server, "GET", "/webhooks")).body.data;
  assert.equal(listed.length, 1);
  const hook = listed[0];
  assert.equal(hook.url, receiver.url);
  assert.equal(hook.enabled, true);
  assert.deepEqual(hook.categories, ["authentication", "user_lifecycle", "admin", "groups", "shared_folders", "vault_items", "policy"]);
  assert.ok(!JSON.stringify(hook).includes(secret), "the API never returns the secret");
  await page.getByRole("link", { name: "Go to the webhook" }).click();
  await page.locator("#delivery-state").waitFor();

  // Deliveries arrive, signed with the secret, with only the chosen categories.
  await activity();
  await until("a delivery at the receiver", async () => receiver.requests.some((q) => !q.failed), 30000, 200);
  for (const q of receiver.requests) {
    const ts = q.headers["x-lpbridge-timestamp"];
    const want = "sha256=" + createHmac("sha256", secret).update(`${ts}.${q.body}`).digest("hex");
    const got = q.headers["x-lpbridge-signature"];
    assert.ok(got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want)), "valid signature");
    for (const e of JSON.parse(q.body).events) assert.ok(!["api", "other"].includes(e.category), e.category);
  }
  // The page follows by itself (it polls): the delivery position moved.
  await until("the delivery state to show a position", async () => /the event of/.test(await page.locator("#delivery-state").innerText()), 20000, 250);
  assert.match(await page.locator("#delivery-moved").innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);

  await page.getByRole("link", { name: "← All webhooks" }).click();
  const row = page.locator("#webhooks tbody tr", { hasText: receiver.url });
  await row.waitFor();
  assert.match(await row.innerText(), /Authentication/);
  assert.match(await row.locator("td[data-label=Delivery]").innerText(), /Up to date|Delivering/);
  await shot(page, "40-webhooks");

  // The receiver fails: each batch is tried 8 times, then kept as a dead letter.
  receiver.failing = true;
  const okBefore = receiver.requests.filter((q) => !q.failed).length;
  await activity();
  const dead = await until(
    "a dead letter",
    async () => {
      const r = await api(server, "GET", `/webhooks/${hook.id}/dead_letters`);
      return r.body.data.length > 0 && r.body.data;
    },
    60000,
    250,
  );
  assert.equal(dead[0].attempts, 8);
  assert.match(dead[0].error, /HTTP 500/);
  await page.getByRole("link", { name: receiver.url }).click();
  await page.locator("#dead-letters").waitFor();
  const first = page.locator("#dead-letters tbody tr").last();
  assert.match(await first.innerText(), new RegExp(`#${dead[0].id}`));
  assert.match(await first.locator("td[data-label='Last error']").innerText(), /HTTP 500 Internal Server Error: receiver is down for the test/);
  assert.equal((await first.locator("td[data-label=Attempts]").innerText()).trim(), "8");
  assert.match(await page.locator("#delivery-dead").innerText(), /waiting for replay/);
  assert.match(await page.locator("#delivery-error").innerText(), /after 8 attempts: POST http:\/\/127\.0\.0\.1:\d+: HTTP 500/);
  await shot(page, "41-webhook-dead-letters");

  // Fixed: replay every dead letter from the page; the job page shows the outcome.
  receiver.failing = false;
  const refused = ids(receiver.requests.filter((q) => q.failed));
  await page.getByRole("button", { name: /^Replay (all )?\d+ dead letters?$/ }).click();
  await page.waitForURL(/\/console\/jobs\//);
  await page.getByText(/^Finished: /).waitFor({ timeout: 30000 });
  assert.match(await page.locator("#job-progress").innerText(), /(\d+) of \1 succeeded/);
  const delivered = ids(receiver.requests.slice(okBefore).filter((q) => !q.failed));
  for (const id of refused) assert.ok(delivered.has(id), `event ${id} was replayed to the receiver`);
  await shot(page, "43-webhook-replayed");
  await page.getByRole("link", { name: "Back" }).click();
  await page.locator("#no-dead-letters").waitFor();
  const after = await api(server, "GET", `/webhooks/${hook.id}/dead_letters?include_replayed=true`);
  assert.ok(after.body.data.every((d) => d.replayed_at), "every dead letter is marked replayed");
  await page.getByRole("link", { name: "Show replayed dead letters too" }).click();
  assert.match(await page.locator("#dead-letters tbody tr").first().innerText(), /Replayed/);

  // Pause and resume, then delete (after confirming).
  await page.getByRole("button", { name: `Pause ${receiver.url}` }).click();
  await page.getByText(/paused: events wait for it/).waitFor();
  assert.equal((await api(server, "GET", `/webhooks/${hook.id}`)).body.data.enabled, false);
  await page.getByRole("button", { name: `Resume ${receiver.url}` }).click();
  await page.getByText(/resumed: waiting events are delivered/).waitFor();
  assert.equal((await api(server, "GET", `/webhooks/${hook.id}`)).body.data.enabled, true);
  await page.getByRole("button", { name: "Delete webhook" }).click();
  await page.getByText(/deleted, with its dead letters/).waitFor();
  await page.locator("#no-webhooks").waitFor();
  assert.deepEqual((await api(server, "GET", "/webhooks")).body.data, []);
  assert.deepEqual(page.errors, []);
});

test("a webhook made with one's own secret, and changed; a read-only user cannot change it", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(`${server.url}/console/webhooks`);
  await page.getByLabel("Receiver URL", { exact: true }).fill(receiver.url);
  await page.getByLabel("Signing secret", { exact: true }).fill("my-own-shared-secret");
  await page.getByLabel("Create it paused (deliver nothing until resumed)").check();
  await page.getByRole("button", { name: "Add webhook" }).click();
  // A chosen secret is not shown back: straight to the webhook's page.
  await page.getByText(/created with your secret/).waitFor();
  assert.equal(await page.locator("#new-secret").count(), 0);
  assert.match(await page.locator("#webhook-props").innerText(), /Paused/);
  assert.match(await page.locator("#webhook-props").innerText(), /All categories/);
  // A bad new URL changes nothing.
  await page.getByLabel("Receiver URL", { exact: true }).fill("ftp://nowhere");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator("#f-url-error").waitFor();
  const [hook] = (await api(server, "GET", "/webhooks")).body.data;
  assert.equal(hook.url, receiver.url);
  page.errors = page.errors.filter((e) => !/status of 422/.test(e));
  // Only vault items from now on.
  await page.getByLabel("Receiver URL", { exact: true }).fill(receiver.url);
  await page.getByLabel("Vault items", { exact: true }).check();
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText(/Webhook saved/).waitFor();
  assert.deepEqual((await api(server, "GET", `/webhooks/${hook.id}`)).body.data.categories, ["vault_items"]);

  server.lpbridge(["console", "user", "add", "viewer", "--read-only", "--password-stdin"], "viewer-correct-horse-battery");
  const ro = await newPage(browser, { width: 390, height: 844 });
  await login(ro, server, { name: "viewer", password: "viewer-correct-horse-battery" });
  await ro.goto(`${server.url}/console/webhooks`);
  await ro.locator("#webhooks tbody tr").first().waitFor();
  assert.equal(await ro.getByRole("button", { name: /Pause|Resume|Add webhook/ }).count(), 0);
  await ro.getByRole("link", { name: receiver.url }).click();
  await ro.locator("#delivery-state").waitFor();
  assert.equal(await ro.getByRole("button").filter({ hasNotText: "Sign out" }).count(), 0);
  // And a forged change is refused by the server all the same.
  const status = await ro.evaluate(async (id) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`/console/webhooks/${id}/delete`, { method: "POST", body: new URLSearchParams({ _csrf: csrf }) });
    return r.status;
  }, hook.id);
  assert.equal(status, 403);
  assert.equal((await api(server, "GET", "/webhooks")).body.data.length, 1);
  await shot(ro, "42-webhook-narrow");
  assert.deepEqual(page.errors, []);
  assert.deepEqual(ro.errors.filter((e) => !/status of 403/.test(e)), []);
});
