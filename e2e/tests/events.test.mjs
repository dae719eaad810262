// The Events page: the audit log the serve's watcher collects from the sandbox, filtered by
// category and user, refreshing itself when new events arrive, with its chart; the watcher's
// pause and resume.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServe, launch, newPage, login, shot, api, sandbox, until } from "../lib/harness.mjs";

let server, browser, cid, configDir;
before(async () => {
  // Poll the sandbox every second (the default is 30 s) so new activity shows up quickly.
  configDir = mkdtempSync(join(tmpdir(), "lpbridge-e2e-events-"));
  const config = join(configDir, "lpbridge.toml");
  writeFileSync(config, "events_poll_secs = 1\n");
  server = await startServe({ args: ["--config", config] });
  browser = await launch();
  const conns = await api(server, "GET", "/connections");
  cid = conns.body.data.find((c) => c.id === "sandbox").cid;
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

/** Users doing things in the sandbox during the last minute. */
async function activity(per_hour = 1800) {
  const r = await sandbox(server, "POST", "/activity", { cid, minutes: 1, per_hour });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.events;
}

/** The text of one column of the events table, row by row. */
async function column(page, label) {
  return page.locator(`#events-table tbody td[data-label="${label}"]`).allInnerTexts();
}

/** Events collected by the watcher, as the JSON API lists them. */
async function collected(query = "") {
  const r = await fetch(`${server.url}/events?page_size=200${query}`, {
    headers: { authorization: `Bearer ${server.apiKey}`, "x-account-id": "sandbox" },
  });
  return (await r.json()).data;
}

test("the collected events are listed, charted, filtered by category and user, and update live", async () => {
  assert.ok((await activity()) > 0);
  // The watcher collects the users' events (not only its own `Reporting` calls).
  await until("the watcher to collect user activity", async () => (await collected()).some((e) => e.username !== "API"));

  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await page.getByRole("heading", { name: "Events", level: 1 }).waitFor();
  await page.locator("#events-table tbody tr").first().waitFor();
  assert.ok((await column(page, "User")).some((u) => u !== "API"), "user events are listed");

  // The chart: an SVG image with a title, a legend in text and its numbers as a table.
  const chart = page.getByRole("img", { name: /Events per .* by category/ });
  await chart.waitFor();
  assert.ok((await page.locator(".chart svg rect").count()) > 0, "the chart has bars");
  const legend = await page.getByRole("list", { name: "Legend" }).locator("li").allInnerTexts();
  assert.ok(legend.length > 0 && legend.every((l) => /^[A-Z][a-zA-Z ]+: [\d,]+$/.test(l)), `legend: ${legend}`);
  assert.match(await page.locator("#chart-desc").innerText(), /\d+ events from .* UTC: /);
  await page.getByText("The chart's numbers as a table").click();
  assert.ok((await page.locator(".chart table.chart-data tbody tr").count()) > 0);
  // The watcher's state.
  const watcherRow = page.locator("#watchers tbody tr", { hasText: "sandbox" });
  assert.match(await watcherRow.innerText(), /Watching/);
  await shot(page, "30-events");

  // Filter by the category of a user's event.
  const cats = await column(page, "Category");
  const users = await column(page, "User");
  const i = users.findIndex((u) => u !== "API");
  const category = cats[i].trim();
  await page.getByLabel("Category", { exact: true }).selectOption({ label: category });
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForURL(/category=/);
  const filteredCats = await column(page, "Category");
  assert.ok(filteredCats.length > 0);
  assert.deepEqual([...new Set(filteredCats.map((c) => c.trim()))], [category], "only that category");
  // The chart follows the filter: one category in its legend.
  const legend2 = await page.getByRole("list", { name: "Legend" }).locator("li").allInnerTexts();
  assert.equal(legend2.length, 1);
  assert.match(legend2[0], new RegExp(`^${category}: `));

  // Then by a user (their name is a link to their events), keeping the category.
  const user = (await column(page, "User"))[0].trim();
  await page.locator("#events-table tbody td[data-label=User] a").first().click();
  await page.waitForURL(/user=/);
  assert.equal(await page.getByLabel("User", { exact: true }).inputValue(), user);
  const filteredUsers = await column(page, "User");
  assert.ok(filteredUsers.length > 0);
  assert.deepEqual([...new Set(filteredUsers.map((u) => u.trim()))], [user], "only that user");
  assert.deepEqual([...new Set((await column(page, "Category")).map((c) => c.trim()))], [category]);
  // The JSON API lists the same events (it may have collected more since the page loaded).
  const fromApi = await collected(`&user=${encodeURIComponent(user)}&category=${new URL(page.url()).searchParams.get("category")}`);
  const apiTimes = new Set(fromApi.map((e) => e.time_utc.replace("T", " ").replace("Z", "")));
  for (const t of await column(page, "Time (UTC)")) assert.ok(apiTimes.has(t.trim().slice(0, 19)), `${t} is listed by GET /events`);
  await shot(page, "31-events-filtered");

  // Live: with the category filter only, new sandbox activity appears without a reload.
  await page.goto(`${server.url}/console/events?category=${new URL(page.url()).searchParams.get("category")}`);
  await page.locator("#events-table tbody tr").first().waitFor();
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const before = await page.locator("#events-live .updated time").getAttribute("datetime");
  await activity();
  await until("new events to appear on the page", async () => (await page.locator("#events-table tr.new").count()) > 0, 30000, 250);
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  assert.notEqual(await page.locator("#events-live .updated time").getAttribute("datetime"), before);
  assert.match(await page.locator("#events-news").innerText(), /^\d+ new events? at \d\d:\d\d:\d\d UTC\.$/);
  // The new rows keep the filter.
  assert.deepEqual([...new Set((await column(page, "Category")).map((c) => c.trim()))], [category]);

  assert.deepEqual(page.errors, []);
  // A bad time is refused next to its field, and nothing is listed (the page answers 422,
  // which the browser logs).
  await page.getByLabel("From (UTC)", { exact: true }).fill("yesterday");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.locator("#f-from-error").waitFor();
  assert.match(await page.locator("#f-from-error").innerText(), /Enter a date/);
  assert.equal(await page.getByLabel("From (UTC)", { exact: true }).getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#events-table").count(), 0);
  // A range in the future holds nothing.
  await page.getByLabel("From (UTC)", { exact: true }).fill("2999-01-01");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.locator("#events-empty").waitFor();
  assert.match(await page.locator("#events-empty").innerText(), /No events match/);
  assert.deepEqual(page.errors, []);
});

test("older pages do not refresh themselves and lead back to the newest", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(`${server.url}/console/events`);
  await activity(3600);
  await until("more than one page of events", async () => (await collected()).length > 55);
  await page.reload();
  await page.getByRole("link", { name: "Older events" }).click();
  await page.waitForURL(/before=/);
  await page.getByRole("heading", { name: /^Older events/ }).waitFor();
  assert.equal(await page.locator("#events-live").getAttribute("hx-get"), null, "no polling on older pages");
  assert.equal(await page.locator("#events-table tbody tr").count() > 0, true);
  await page.getByRole("link", { name: "Newest events" }).first().click();
  await page.getByRole("heading", { name: /^Newest events/ }).waitFor();
  assert.deepEqual(page.errors, []);
});

test("the watcher pauses and resumes from the page", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(`${server.url}/console/events`);
  await page.getByRole("button", { name: "Pause collecting sandbox" }).click();
  await page.getByText("Paused collecting events of sandbox").waitFor();
  assert.match(await page.locator("#watchers tbody tr", { hasText: "sandbox" }).innerText(), /Paused/);
  const w = await fetch(`${server.url}/events/watcher`, {
    headers: { authorization: `Bearer ${server.apiKey}`, "x-account-id": "sandbox" },
  }).then((r) => r.json());
  assert.equal(w.data.events_watch, false);
  await page.getByRole("button", { name: "Resume collecting sandbox" }).click();
  await page.getByText("Collecting events of sandbox again").waitFor();
  assert.match(await page.locator("#watchers tbody tr", { hasText: "sandbox" }).innerText(), /Watching/);
  assert.deepEqual(page.errors, []);
});

test("a read-only console user sees the events but no pause button", async () => {
  server.lpbridge(["console", "user", "add", "reader", "--read-only", "--password-stdin"], "reader-correct-horse-battery");
  const page = await newPage(browser, { width: 390, height: 844 });
  await login(page, server, { name: "reader", password: "reader-correct-horse-battery" });
  // One user's events: a short page to look at on a phone.
  const someone = (await collected()).find((e) => e.username !== "API").username;
  await page.goto(`${server.url}/console/events?user=${encodeURIComponent(someone)}`);
  await page.locator("#events-table tbody tr").first().waitFor();
  await page.getByRole("img", { name: /Events per/ }).waitFor();
  assert.match(await page.locator("#watchers").innerText(), /Watching/);
  assert.equal(await page.getByRole("button", { name: /Pause collecting/ }).count(), 0);
  // The page fits a phone: no horizontal scrolling of the whole page.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
  await shot(page, "32-events-narrow");
  assert.deepEqual(page.errors, []);
});

test("a far-off time range is refused, and the longest allowed one is charted in at most 60 bars", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  const far = await page.goto(`${server.url}/console/events?from=-262000-01-01&to=%2B262000-01-01`);
  assert.equal(far.status(), 422);
  assert.match(await page.locator("#f-from-error").innerText(), /between the years 1970 and 9999/);
  const wide = await page.goto(`${server.url}/console/events?from=1970-01-01&to=9999-12-31`);
  assert.equal(wide.status(), 200);
  await page.getByRole("img", { name: /Events per \d+ days by category/ }).waitFor();
  assert.ok((await page.locator(".chart table.chart-data tbody tr").count()) <= 60);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
