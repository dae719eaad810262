// The Connections page: adding a LastPass account (refused with a wrong provisioning hash,
// nothing stored; then accepted), testing and removing it; a PSA integration refused with the
// product's error; the MSP account's key refused when empty.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServe, launch, newPage, login, shot, api, sandbox } from "../lib/harness.mjs";

let server, browser;
before(async () => {
  server = await startServe();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const CID = 9000001;
const PROVHASH = "e2e-provhash-0f3c9a";


async function connectionIds() {
  const r = await api(server, "GET", "/connections");
  assert.equal(r.status, 200);
  return r.body.data.map((c) => c.id).sort();
}

test("a LastPass account is checked before it is stored, then tested and removed", async () => {
  const made = await sandbox(server, "POST", "/accounts", { cid: CID, provhash: PROVHASH, name: "Customer B" });
  assert.equal(made.status, 201, JSON.stringify(made.body));

  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  assert.match(page.url(), /\/console\/connections$/);
  await page.getByRole("heading", { name: "Connections", level: 1 }).waitFor();
  const lp = page.getByRole("region", { name: "LastPass accounts" });
  await lp.getByRole("cell", { name: "sandbox", exact: true }).waitFor();

  // A wrong provisioning hash: refused next to the field, 422, nothing stored, input kept.
  const form = page.getByRole("form", { name: "Add a LastPass account" });
  await form.getByLabel("Connection ID", { exact: true }).fill("customer-b");
  await form.getByLabel("Account number (CID)", { exact: true }).fill(String(CID));
  await form.getByLabel("Provisioning hash", { exact: true }).fill("not-the-provhash");
  await form.getByLabel("Endpoint", { exact: true }).fill(server.sandbox.endpoint);
  await form.getByLabel("Time zone", { exact: true }).fill("Europe/Berlin");
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/console/connections/lastpass") && r.request().method() === "POST"),
    form.getByRole("button", { name: "Check and add", exact: true }).click(),
  ]);
  assert.equal(refused.status(), 422);
  const err = page.locator("#f-provhash-error");
  await err.waitFor();
  assert.match(await err.innerText(), /LastPass refused this account number and provisioning hash/);
  const hash = page.getByRole("form", { name: "Add a LastPass account" }).getByLabel("Provisioning hash", { exact: true });
  assert.equal(await hash.getAttribute("aria-invalid"), "true");
  assert.equal(await hash.inputValue(), "", "a secret is never sent back");
  assert.equal(await page.getByLabel("Connection ID", { exact: true }).inputValue(), "customer-b");
  assert.deepEqual(await connectionIds(), ["sandbox"]);
  await shot(page, "11-connection-error");

  // A CID that is not a number: next to its field, before any call.
  await page.getByLabel("Account number (CID)", { exact: true }).fill("12ab");
  await page.getByLabel("Provisioning hash", { exact: true }).fill(PROVHASH);
  await page.getByRole("button", { name: "Check and add", exact: true }).click();
  await page.locator("#f-cid-error").waitFor();
  assert.deepEqual(await connectionIds(), ["sandbox"]);

  // The right credentials: stored, with the account's user count in the message.
  await page.getByLabel("Account number (CID)", { exact: true }).fill(String(CID));
  await page.getByLabel("Provisioning hash", { exact: true }).fill(PROVHASH);
  await page.getByRole("button", { name: "Check and add", exact: true }).click();
  const flash = page.getByRole("status").filter({ hasText: "Added the LastPass account customer-b" });
  await flash.waitFor();
  assert.match(await flash.innerText(), /credentials work, \d+ users/);
  assert.deepEqual(await connectionIds(), ["customer-b", "sandbox"]);
  const stored = (await api(server, "GET", "/connections/customer-b")).body.data;
  assert.equal(stored.cid, CID);
  assert.equal(stored.time_zone, "Europe/Berlin");
  assert.equal(stored.endpoint, server.sandbox.endpoint);

  // Test: one probe, the answer inline.
  const row = lp.getByRole("row").filter({ hasText: "customer-b" });
  await row.getByRole("button", { name: "Test customer-b" }).click();
  const result = row.locator("output.test-result");
  await result.getByText("OK").waitFor();
  assert.match(await result.innerText(), new RegExp(`CID ${CID}: LastPass answered, \\d+ users`));
  await shot(page, "10-connections");

  // With two connections the Directory offers a choice, and shows the chosen account's users.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Directory" }).click();
  await page.getByLabel("Connection", { exact: true }).selectOption("customer-b");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.waitForURL(/connection=customer-b/);
  const theirs = await fetch(server.url + "/unified/iam/users?page_size=1000", {
    headers: { authorization: `Bearer ${server.apiKey}`, "x-account-id": "customer-b" },
  }).then((r) => r.json());
  await page.locator("p.count").getByText(new RegExp(`^${theirs.data.length} users`)).waitFor();
  await page.locator("table.users").getByText(theirs.data[0].primary_email_address, { exact: true }).waitFor();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Connections" }).click();

  // Remove: asks first (auto-accepted here), says what went, and the connection is gone.
  await row.getByRole("button", { name: "Remove customer-b" }).click();
  await page.getByRole("status").filter({ hasText: "Removed the connection customer-b" }).waitFor();
  assert.deepEqual(await connectionIds(), ["sandbox"]);
  assert.equal(await lp.getByRole("row").filter({ hasText: "customer-b" }).count(), 0);
  assert.deepEqual(page.errors, []);
});

test("a PSA integration with wrong credentials is refused with the product's message", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  const psa = page.getByRole("region", { name: "PSA integrations" });
  // The sandbox's own integrations are listed, free, and pass their Test.
  const cwRow = psa.getByRole("row").filter({ hasText: "sandbox-connectwise" });
  await cwRow.getByText("ConnectWise Manage").waitFor();
  await psa.getByRole("row").filter({ hasText: "sandbox-autotask" }).getByText("Datto Autotask").waitFor();
  await cwRow.getByRole("button", { name: "Test sandbox-connectwise" }).click();
  await cwRow.locator("output.test-result").getByText("ConnectWise Manage accepted the credentials.").waitFor();
  const site = (await cwRow.locator("td[data-label='Site / account'] code").innerText()).trim();

  const before = (await api(server, "GET", "/msp/integrations")).body.data.map((i) => i.id).sort();
  const cw = page.getByRole("region", { name: "Add ConnectWise Manage" });
  await cw.getByLabel("Integration ID", { exact: true }).fill("acme-cw");
  await cw.getByLabel("Site", { exact: true }).fill(site);
  await cw.getByLabel("Company ID", { exact: true }).fill("not-the-company");
  await cw.getByLabel("Public key", { exact: true }).fill("public-key");
  await cw.getByLabel("Private key", { exact: true }).fill("wrong-private-key");
  await cw.getByLabel("Client ID", { exact: true }).fill("3f2c0000-0000-4000-8000-000000000000");
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/console/connections/psa") && r.request().method() === "POST"),
    cw.getByRole("button", { name: "Check and add ConnectWise Manage" }).click(),
  ]);
  assert.equal(refused.status(), 422);
  const alert = page.getByRole("region", { name: "Add ConnectWise Manage" }).getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /^Authentication error\. Check your credentials for your PSA provider and try again$/m);
  // The typed settings are kept, the secret is not.
  const again = page.getByRole("region", { name: "Add ConnectWise Manage" });
  assert.equal(await again.getByLabel("Company ID", { exact: true }).inputValue(), "not-the-company");
  assert.equal(await again.getByLabel("Private key", { exact: true }).inputValue(), "");
  const after = (await api(server, "GET", "/msp/integrations")).body.data.map((i) => i.id).sort();
  assert.deepEqual(after, before, "nothing was stored");

  // The MSP account's key: an empty one is "Credentials are required", and nothing changes.
  const msp = page.getByRole("region", { name: "MSP account" });
  await msp.getByText("Set", { exact: true }).waitFor();
  const saved = (await api(server, "GET", "/msp/credentials")).body.data;
  await msp.getByRole("button", { name: "Check and save" }).click();
  await page.locator("#f-msp-api-key-error").getByText("Credentials are required").waitFor();
  assert.deepEqual((await api(server, "GET", "/msp/credentials")).body.data, saved);
  assert.deepEqual(page.errors, []);
});

test("a read-only principal sees the lists without the forms, and on a narrow screen", async () => {
  const key = server.lpbridge(["apikey", "create", "--name", "viewer", "--read-only"]).trim();
  const page = await newPage(browser, { width: 390, height: 844 });
  await login(page, server, { apiKey: key });
  await page.getByRole("heading", { name: "Connections", level: 1 }).waitFor();
  await page.getByText("may look at these lists but not change them").waitFor();
  assert.equal(await page.getByRole("form", { name: "Add a LastPass account" }).count(), 0);
  assert.equal(await page.getByRole("button", { name: /^Remove / }).count(), 0);
  // Testing is a read: allowed.
  const row = page.getByRole("region", { name: "LastPass accounts" }).getByRole("row").filter({ hasText: "sandbox" });
  await row.getByRole("button", { name: "Test sandbox" }).click();
  await row.locator("output.test-result").getByText("OK").waitFor();
  // The refusal holds without the form too.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const r = await page.context().request.post(server.url + "/console/connections/lastpass/sandbox/remove", {
    form: { _csrf: csrf },
  });
  assert.equal(r.status(), 403);
  assert.deepEqual(await connectionIds(), ["sandbox"]);
  await shot(page, "12-connections-narrow");
  assert.deepEqual(page.errors, []);
});
