// The Directory: find a user by typing part of their e-mail, open them, disable and enable them
// (checked in the sandbox itself), require a password change, change their groups, see a
// LastPass failure change nothing; groups with members; shared folders with roles; a bulk
// action with its progress page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServe, launch, newPage, login, shot, api, sandbox, until } from "../lib/harness.mjs";

let server, browser, cid, users;
before(async () => {
  server = await startServe();
  browser = await launch();
  const accounts = await sandbox(server, "GET", "/accounts");
  cid = accounts.body[0].cid;
  users = (await api(server, "GET", "/unified/iam/users?page_size=1000")).body.data;
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The sandbox's own record of a user. */
async function inSandbox(email) {
  const r = await sandbox(server, "GET", `/accounts/${cid}/users/${encodeURIComponent(email)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Active users with a name, not admins, in no more groups than the account has minus one. */
function activeUsers() {
  return users.filter((u) => u.status.value === "enabled" && u.name && !u.roles.some((r) => r.id === "admin"));
}

test("find a user, disable and enable them, require a password change, change their groups", async () => {
  const target = activeUsers()[3];
  const email = target.primary_email_address;
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Directory" }).click();
  await page.getByRole("heading", { name: "Directory", level: 1 }).waitFor();
  await page.getByRole("link", { name: "Users", exact: true }).and(page.locator("[aria-current=page]")).waitFor();
  await page.locator("p.count").getByText(new RegExp(`^${users.length} users · page 1 of \\d+$`)).waitFor();
  await shot(page, "20-directory-users");

  // Search as you type: part of the e-mail address, no button pressed.
  const part = email.split("@")[0].slice(0, -1);
  await page.getByLabel("Search users", { exact: true }).pressSequentially(part, { delay: 20 });
  await until("the search results", async () => (await page.locator("table.users tbody tr").count()) === 1);
  assert.match(await page.locator("p.count").innerText(), new RegExp(`^1 of ${users.length} users match`));
  assert.match(page.url(), new RegExp(`q=${part.replace(".", "\\.")}`), "the search is in the address");
  const row = page.locator("table.users tbody tr");
  assert.match(await row.innerText(), /Active/);

  await row.getByRole("link", { name: target.name }).click();
  await page.getByRole("heading", { name: target.name, level: 1 }).waitFor();
  const props = page.getByRole("region", { name: "Properties" });
  assert.match(await props.innerText(), new RegExp(email.replace(/[.]/g, "\\.")));

  // Disable: the page says so, and so does the sandbox.
  await page.getByRole("button", { name: "Disable", exact: true }).click();
  await page.getByRole("status").filter({ hasText: `Disabled ${email}` }).waitFor();
  await props.getByText("Disabled: cannot log in (vault kept)").waitFor();
  assert.equal((await inSandbox(email)).disabled, true);

  // Enable back.
  await page.getByRole("button", { name: "Enable", exact: true }).click();
  await page.getByRole("status").filter({ hasText: `Enabled ${email}` }).waitFor();
  await props.getByText("Active", { exact: true }).waitFor();
  assert.equal((await inSandbox(email)).disabled, false);

  // Require a password change.
  assert.equal((await inSandbox(email)).password_reset_required, false);
  await page.getByRole("button", { name: "Require password change" }).click();
  await page.getByRole("status").filter({ hasText: `${email} must change their master password` }).waitFor();
  assert.equal((await inSandbox(email)).password_reset_required, true);

  // Groups: add to one, then remove from it.
  const select = page.getByLabel("Add to group", { exact: true });
  const group = await select.locator("option:not([value=''])").first().getAttribute("value");
  await select.selectOption(group);
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.getByRole("status").filter({ hasText: `Added ${email} to ${group}.` }).waitFor();
  assert.ok((await inSandbox(email)).groups.includes(group));
  await shot(page, "21-user-detail");
  await page.getByRole("button", { name: `Remove from ${group}` }).click();
  await page.getByRole("status").filter({ hasText: `Removed ${email} from ${group}.` }).waitFor();
  assert.ok(!(await inSandbox(email)).groups.includes(group));

  // A LastPass failure: its error is shown and nothing changes.
  const fault = await sandbox(server, "POST", "/faults", { cmd: "disableuser", kind: "status", status: 400 });
  assert.equal(fault.status, 201);
  try {
    await page.getByRole("button", { name: "Disable", exact: true }).click();
    const alert = page.getByRole("alert").filter({ hasText: `Could not disable ${email}` });
    await alert.waitFor();
    assert.match(await alert.innerText(), /HTTP 400/);
    await props.getByText("Active", { exact: true }).waitFor();
    assert.equal((await inSandbox(email)).disabled, false);
  } finally {
    await sandbox(server, "DELETE", `/faults/${fault.body.id}`);
  }
  assert.deepEqual(page.errors, []);
});

test("groups with their members, shared folders with roles and permissions", async () => {
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(server.url + "/console/directory/groups");
  await page.getByRole("link", { name: "Groups", exact: true }).and(page.locator("[aria-current=page]")).waitFor();
  const groups = (await api(server, "GET", "/unified/iam/groups")).body.data;
  assert.ok(groups.length > 0);
  const g = groups[0];
  const row = page.locator("table.groups tbody tr").filter({ has: page.getByText(g.name, { exact: true }) });
  assert.equal((await row.locator("td[data-label=Members]").innerText()).trim(), String(g.users.length));
  await row.getByText(`Show the ${g.users.length} members of ${g.name}`).click();
  const first = g.users[0];
  await row.getByRole("link", { name: first.name || first.primary_email_address }).waitFor();
  await shot(page, "22-groups");

  await page.getByRole("link", { name: "Shared folders", exact: true }).click();
  await page.getByRole("link", { name: "Shared folders", exact: true }).and(page.locator("[aria-current=page]")).waitFor();
  const folders = (await api(server, "GET", "/unified/iam/resources")).body.data;
  const f = folders[0];
  const members = (
    await api(server, "GET", `/unified/iam/resource_users?resource_type=shared_folder&resource_id=${f.id}&page_size=1000`)
  ).body.data;
  const table = page.getByRole("table", { name: f.name });
  await table.waitFor();
  assert.equal(await table.locator("tbody tr").count(), members.length);
  // Each member's role, as the unified API gives it, with LastPass's permission flags.
  for (const m of members.slice(0, 5)) {
    const tr = table.locator("tbody tr").filter({ hasText: m.username });
    assert.match(await tr.locator("td[data-label=Role]").innerText(), new RegExp(m.roles[0].name));
    const flags = m.roles[0].type.source_value;
    const perms = await tr.locator("td[data-label=Permissions]").innerText();
    assert.equal(/Read-only/.test(perms), flags.readonly, `${m.username}: ${perms}`);
    assert.equal(/Admin/.test(perms), flags.can_administer, `${m.username}: ${perms}`);
    assert.equal(/Hide passwords/.test(perms), !flags.give, `${m.username}: ${perms}`);
  }
  await shot(page, "23-shared-folders");
  assert.deepEqual(page.errors, []);
});

test("a bulk action runs in the background with its progress, and the sandbox shows it", async () => {
  const picked = activeUsers().slice(10, 13).map((u) => u.primary_email_address);
  const page = await newPage(browser);
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(server.url + "/console/directory");
  for (const email of picked) await page.getByLabel(`Select ${email}`, { exact: true }).check();
  await page.getByRole("button", { name: "Disable", exact: true }).click();
  await page.getByRole("heading", { name: "Disable 3 users" }).waitFor();
  await page.getByText("3 of 3 succeeded.").waitFor();
  assert.match(await page.locator("#job-progress").innerText(), /Finished: 3 of 3 done/);
  for (const email of picked) assert.equal((await inSandbox(email)).disabled, true, email);

  // Back to the list: they show as disabled; enable them again the same way.
  await page.getByRole("link", { name: "Back" }).click();
  await page.getByLabel("Show", { exact: true }).selectOption("disabled");
  await until("the disabled users", async () => {
    const text = await page.locator("table.users").innerText();
    return picked.every((e) => text.includes(e));
  });
  for (const email of picked) await page.getByLabel(`Select ${email}`, { exact: true }).check();
  await page.getByRole("button", { name: "Enable", exact: true }).click();
  await page.getByRole("heading", { name: "Enable 3 users" }).waitFor();
  await page.getByText("3 of 3 succeeded.").waitFor();
  for (const email of picked) assert.equal((await inSandbox(email)).disabled, false, email);

  // Nothing selected: refused, nothing changes.
  await page.goto(server.url + "/console/directory");
  await page.getByRole("button", { name: "Require password change" }).click();
  await page.getByRole("alert").filter({ hasText: "Select at least one user first" }).waitFor();
  assert.deepEqual(page.errors, []);
});

test("a read-only principal sees the directory without any change button", async () => {
  const key = server.lpbridge(["apikey", "create", "--name", "auditor", "--read-only"]).trim();
  const page = await newPage(browser);
  await login(page, server, { apiKey: key });
  await page.goto(server.url + "/console/directory");
  await page.locator("table.users tbody tr").first().waitFor();
  assert.equal(await page.getByRole("checkbox").count(), 0);
  assert.equal(await page.getByRole("button", { name: "Disable", exact: true }).count(), 0);
  await page.locator("table.users tbody tr").first().getByRole("link").click();
  await page.getByRole("region", { name: "Properties" }).waitFor();
  assert.equal(await page.getByRole("region", { name: "Actions" }).count(), 0);
  // The handler refuses anyway.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const email = activeUsers()[0].primary_email_address;
  const r = await page.context().request.post(
    `${server.url}/console/directory/users/${encodeURIComponent(email)}/disable`,
    { form: { _csrf: csrf, connection: "sandbox" }, maxRedirects: 0 },
  );
  assert.equal(r.status(), 403);
  assert.equal((await inSandbox(email)).disabled, false);
  assert.deepEqual(page.errors, []);
});

test("the users page on a narrow screen", async () => {
  const page = await newPage(browser, { width: 390, height: 844 });
  await login(page, server, { apiKey: server.apiKey });
  await page.goto(server.url + "/console/directory?status=pending");
  const invited = users.filter((u) => u.status.value === "pending");
  await page.getByText(`${invited.length} of ${users.length} users match`).waitFor();
  assert.equal(await page.locator("table.users tbody tr").count(), invited.length);
  await shot(page, "24-directory-narrow");
  assert.deepEqual(page.errors, []);
});
