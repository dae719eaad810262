// Signing in and out: a console user, an API key, bad credentials, a revoked key.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServe, launch, newPage, login, shot, addConsoleUser } from "../lib/harness.mjs";

let server, browser;
before(async () => {
  server = await startServe();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a console user signs in, sees the console, and signs out", async () => {
  const alice = addConsoleUser(server, "alice");
  const page = await newPage(browser);
  await page.goto(server.url + "/console/events");
  // Not signed in: the login page, which returns to the page asked for.
  await page.getByRole("heading", { name: "Sign in to lpbridge" }).waitFor();
  await shot(page, "01-login");
  await page.getByLabel("Username", { exact: true }).fill(alice.name);
  await page.getByLabel("Password", { exact: true }).fill(alice.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/console\/events/);
  assert.match(await page.locator("header .who").innerText(), /alice/);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to lpbridge" }).waitFor();
  // The session is over: the console asks to sign in again.
  await page.goto(server.url + "/console/connections");
  await page.getByRole("heading", { name: "Sign in to lpbridge" }).waitFor();
  assert.deepEqual(page.errors, []);
});

test("a wrong password is refused next to the field, and nothing else is said", async () => {
  const page = await newPage(browser);
  await page.goto(server.url + "/console/login");
  await page.getByLabel("Username", { exact: true }).fill("alice");
  await page.getByLabel("Password", { exact: true }).fill("not-the-password");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  const err = page.locator("#f-password-error");
  await err.waitFor();
  assert.equal(await err.innerText(), "The username or the password is wrong");
  assert.equal(await page.getByLabel("Password").getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel("Username").inputValue(), "alice");
  await shot(page, "01-login-error");
});

test("an API key signs in; revoking it ends the session", async () => {
  const key = server.lpbridge(["apikey", "create", "--name", "browser"]).trim();
  const page = await newPage(browser);
  await login(page, server, { apiKey: key });
  assert.match(await page.locator("header .who").innerText(), /API key .* \(browser\)/);
  const id = key.split("_")[1];
  server.lpbridge(["apikey", "revoke", id]);
  await page.goto(server.url + "/console/connections");
  await page.getByRole("heading", { name: "Sign in to lpbridge" }).waitFor();
});

test("a form posted without the session's CSRF token changes nothing", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  const status = await page.evaluate(async () => {
    const r = await fetch("/console/logout", { method: "POST", body: new URLSearchParams({ _csrf: "forged" }) });
    return r.status;
  });
  assert.equal(status, 403);
  // Still signed in.
  await page.goto(server.url + "/console/connections");
  await page.getByRole("button", { name: "Sign out" }).waitFor();
});
