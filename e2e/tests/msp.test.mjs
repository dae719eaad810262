// The PSA import wizard in the browser (issue 10's acceptance): a company in each of the three
// statuses, one mapped to an existing managed company through Manage → Company details, contacts
// selected and a user mapped through Manage users → User details, Import and Map with its
// progress, the result page's numbers checked against the MSP emulator, bad input refused next
// to the field with nothing saved, and "Another admin is already working with this integration"
// for a second browser session until the first one finishes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServe, launch, newPage, login, shot, addConsoleUser, api, sandbox, until,
} from "../lib/harness.mjs";

const PSA = "sandbox-connectwise";
const PSA_NAME = "ConnectWise Manage";
const LOCKED = "Another admin is already working with this integration";
// The companies of the browser's filter: Competitor × Credit Hold; the setup import also takes
// Not-Approved ones, so one of them is "not in" the browser's import.
const TYPE = { id: "5", name: "Competitor" };
const STATUS = { id: "4", name: "Credit Hold" };
const OTHER_STATUS = "3";
const HARBOR = "Harborview Holdings";
const HARBOR_USER = { email: "f.okafor@harborview.example", name: "Fatima Okafor" };

let server, browser, alice, bob;
let A; // alice's page, through the whole wizard
let wizardId;
const co = {}; // mapped, mapTo, dup, create, gone, extra[]: the PSA companies
const pre = {}; // the setup import's e-mails, the managed companies made for the test
const picked = {}; // the contacts ticked in the browser

/** Expected answers of refused forms (the browser logs a failed request as a console error). */
const unexpected = (page, codes = []) =>
  page.errors.filter((e) => !codes.some((c) => e.includes(`status of ${c}`)));

function must(r, what) {
  assert.ok(r.status >= 200 && r.status < 300, `${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const msp = {
  async companies() {
    return must(await sandbox(server, "GET", "/msp/companies"), "emulator companies");
  },
  async named(name) {
    return (await this.companies()).filter((c) => c.name === name);
  },
};

/** Types into a search-as-you-type box and waits for its results (they replace the list). */
async function search(input, text) {
  const page = input.page();
  const answered = page.waitForResponse(
    (r) => r.url().includes("/search?") && new URL(r.url()).searchParams.get("q") === text,
  );
  await settled(page);
  await input.fill(text);
  assert.equal((await answered).status(), 200);
  await settled(page);
}

/** Waits for a text on a page that is (re)loading, and for its scripts to be ready. */
async function loaded(page, text) {
  await page.getByText(text).waitFor();
  await page.waitForLoadState("load");
  await settled(page);
}

/** Waits until htmx has swapped and settled (content it swaps in is wired up when it settles). */
async function settled(page) {
  await page.waitForFunction(() => !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling"));
}

const activeEmails = (contacts) => contacts.filter((c) => c.email && c.active).map((c) => c.email);

before(async () => {
  server = await startServe({ users: 30 });
  browser = await launch();
  alice = addConsoleUser(server, "alice");
  bob = addConsoleUser(server, "bob");

  // An import through the JSON API first: one company becomes Mapped (two users), another one
  // (Not-Approved) is mapped too and is "not in" the browser's filter later.
  const made = must(
    await api(server, "POST", "/msp/imports", {
      psa: PSA,
      filter: { types: [TYPE.id], statuses: [OTHER_STATUS, STATUS.id] },
    }),
    "setup import",
  ).data;
  const rows = made.lists.companies_in_psa;
  const hold = rows.filter((r) => r.psa_status === STATUS.name);
  const other = rows.filter((r) => r.psa_status !== STATUS.name);
  assert.ok(hold.length >= 4 && other.length >= 1, `seed: ${rows.map((r) => r.name)}`);
  assert.ok(rows.every((r) => r.import_status === "Unmapped"), "a fresh sandbox has imported nothing");
  // The alphabetically first one is Mapped: listed last all the same (unmapped first).
  [co.mapped, co.mapTo, co.dup, co.create] = hold;
  co.extra = hold.slice(4);
  co.gone = other[0];
  must(
    await api(server, "PATCH", `/msp/imports/${made.id}/companies`, {
      choices: rows.map((r) => ({
        company: r.psa_company_id,
        import: r === co.mapped || r === co.gone,
      })),
    }),
    "setup choices",
  );
  const users = must(
    await api(server, "GET", `/msp/imports/${made.id}/companies/${co.mapped.psa_company_id}/users`),
    "setup users",
  ).data;
  pre.emails = activeEmails(users.contacts).slice(0, 2);
  assert.equal(pre.emails.length, 2);
  must(
    await api(server, "PATCH", `/msp/imports/${made.id}/companies/${co.mapped.psa_company_id}/users`, {
      emails: pre.emails,
    }),
    "setup e-mails",
  );
  must(await api(server, "POST", `/msp/imports/${made.id}/apply`), "setup apply");
  const done = await until(
    "the setup import",
    async () => {
      const r = await api(server, "GET", `/msp/imports/${made.id}/result`);
      return r.status === 200 && r.body.data.status !== "running" && r.body.data;
    },
    60000,
    200,
  );
  assert.equal(done.status, "succeeded", JSON.stringify(done.errors));
  assert.equal(done.companies.created, 2);
  assert.equal(done.users.added, 2);
  must(await api(server, "DELETE", `/msp/imports/${made.id}`), "setup end");

  // A managed company made by hand with a PSA company's name: a potential duplicate. And one
  // with an unrelated name and a user, to map a company and a contact to.
  pre.dupManaged = must(await sandbox(server, "POST", "/msp/companies", { name: co.dup.name }), "dup");
  pre.harbor = must(await sandbox(server, "POST", "/msp/companies", { name: HARBOR }), "harbor");
  pre.harborUser = must(
    await sandbox(server, "POST", `/msp/companies/${pre.harbor.id}/users`, HARBOR_USER),
    "harbor user",
  );
  A = await newPage(browser);
  await login(A, server, alice);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("start: the MSP account's key, the integrations, and an empty key refused next to its field", async () => {
  await A.goto(server.url + "/console/msp");
  await A.getByRole("heading", { name: "PSA import", level: 1 }).waitFor();
  const row = A.locator("tr", { hasText: PSA });
  await row.getByRole("link", { name: `Import from ${PSA_NAME}` }).waitFor();
  assert.equal(await row.locator(".badge").innerText(), "Free");
  await shot(A, "50-msp-start");

  const before = must(await api(server, "GET", "/msp/credentials"), "credentials").data;
  await A.getByText("Replace the API key").click();
  const posted = A.waitForResponse((r) => r.url().endsWith("/console/msp/credentials"));
  await A.getByRole("button", { name: "Check and save" }).click();
  assert.equal((await posted).status(), 422);
  const err = A.locator("#f-api-key-error");
  await err.waitFor();
  assert.equal(await err.innerText(), "Credentials are required");
  assert.equal(await A.getByLabel("LastPass REST API key").getAttribute("aria-invalid"), "true");
  const afterwards = must(await api(server, "GET", "/msp/credentials"), "credentials").data;
  assert.deepEqual(afterwards, before, "nothing was stored");

  // The PSA refuses the attributes (its API member lacks the setup right): the product's
  // message, and no Continue.
  must(await sandbox(server, "POST", "/connectwise/permissions", { setup: false }), "no setup right");
  try {
    await A.goto(`${server.url}/console/msp/psa/${PSA}`);
    const alert = A.locator("#msp-filters .alert.error");
    await alert.waitFor();
    assert.equal(await alert.locator("p").first().innerText(), "We received a Forbidden error from your PSA provider");
    assert.equal(await A.getByRole("button", { name: "Continue" }).count(), 0);
    await shot(A, "51-msp-filters-psa-error");
  } finally {
    must(await sandbox(server, "POST", "/connectwise/permissions", { setup: true }), "setup right back");
  }
  assert.equal((await api(server, "GET", `/msp/integrations/${PSA}/lock`)).body.data.locked, false, "no lock taken");
  assert.deepEqual(unexpected(A, [403]), []);
  A.errors.length = 0;
});

test("a read-only principal sees the imports but can start nothing", async () => {
  const key = server.lpbridge(["apikey", "create", "--name", "viewer", "--read-only"]).trim();
  const page = await newPage(browser);
  await login(page, server, { apiKey: key });
  await page.goto(server.url + "/console/msp");
  await page.getByText("may look at imports but not start or change them").waitFor();
  assert.equal(await page.getByRole("link", { name: /^Import from/ }).count(), 0);
  assert.equal(await page.getByRole("button", { name: "Check and save" }).count(), 0);
  await page.goto(`${server.url}/console/msp/psa/${PSA}`);
  await page.getByRole("group", { name: "Company types" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Continue" }).count(), 0);
  const forged = await page.evaluate(async (psa) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`/console/msp/psa/${psa}`, { method: "POST", body: new URLSearchParams({ _csrf: csrf, type: "5" }) });
    return r.status;
  }, PSA);
  assert.equal(forged, 403);
  assert.equal((await api(server, "GET", `/msp/integrations/${PSA}/lock`)).body.data.locked, false, "nothing started");
  assert.deepEqual(unexpected(page, [403]), []);
  await page.context().close();
});

test("steps 1 and 2: filters, both tabs, the columns, the three statuses with unmapped first", async () => {
  await A.goto(server.url + "/console/msp");
  await A.locator("tr", { hasText: PSA }).getByRole("link", { name: `Import from ${PSA_NAME}` }).click();
  await A.getByRole("heading", { name: `Import from ${PSA_NAME}`, level: 1 }).waitFor();
  await A.getByText("A list of attributes set up for your PSA").waitFor();
  const types = A.getByRole("group", { name: "Company types" });
  const statuses = A.getByRole("group", { name: "Statuses" });
  await types.getByLabel(TYPE.name, { exact: true }).check();
  await statuses.getByLabel(STATUS.name, { exact: true }).check();
  assert.equal(await A.locator("ol.steps li[aria-current=step]").innerText(), "Filter the attributes");
  await shot(A, "51-msp-filters");
  await A.getByRole("button", { name: "Continue" }).click();
  await A.waitForURL(/\/console\/msp\/imports\/[0-9a-f]+\/companies$/, { timeout: 30000 });
  wizardId = A.url().split("/imports/")[1].split("/")[0];

  await A.getByRole("heading", { name: "Select which accounts and contacts to import" }).waitFor();
  const inTab = A.getByRole("link", { name: new RegExp(`^Companies in ${PSA_NAME}`) });
  const notTab = A.getByRole("link", { name: new RegExp(`^Companies not in ${PSA_NAME}`) });
  assert.equal(await inTab.getAttribute("aria-current"), "page");
  assert.equal(await notTab.getAttribute("aria-current"), null);
  const heads = (await A.locator("#msp-companies thead th").allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(heads.slice(1), [
    "The name of the company",
    "Import status",
    "The type of account in your PSA",
    `Status in ${PSA_NAME}`,
    "Last import date",
  ]);
  // The rows: names and statuses, unmapped (potential duplicates included) first.
  const rows = A.locator("#msp-companies tbody tr");
  const n = await rows.count();
  assert.equal(n, 4 + co.extra.length);
  const seen = [];
  for (let i = 0; i < n; i++) {
    const r = rows.nth(i);
    seen.push({
      name: (await r.locator("td").nth(1).innerText()).split("\n")[0].trim(),
      status: await r.locator(".badge").innerText(),
      kind: (await r.locator(".badge").getAttribute("class")).replace("badge ", ""),
      type: (await r.locator("td").nth(3).innerText()).trim(),
      psaStatus: (await r.locator("td").nth(4).innerText()).split("\n")[0].trim(),
      last: (await r.locator("td").nth(5).innerText()).trim(),
      ticked: await r.getByRole("checkbox").isChecked(),
    });
  }
  const status = (name) => seen.find((s) => s.name === name);
  assert.equal(status(co.mapped.name).status, "Mapped");
  assert.equal(status(co.mapped.name).kind, "ok");
  assert.equal(status(co.dup.name).status, "Unmapped – potential duplicate");
  assert.equal(status(co.dup.name).kind, "warn");
  assert.equal(status(co.mapTo.name).status, "Unmapped");
  assert.equal(status(co.mapTo.name).kind, "info");
  assert.equal(status(co.create.name).status, "Unmapped");
  assert.equal(seen.at(-1).name, co.mapped.name, "the Mapped company comes last, though its name sorts first");
  assert.ok(seen.slice(0, -1).every((s) => s.status !== "Mapped"));
  assert.ok(seen.every((s) => s.type === TYPE.name && s.psaStatus === STATUS.name && s.ticked));
  assert.match(status(co.mapped.name).last, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  assert.equal(status(co.mapTo.name).last, "Never");
  await shot(A, "52-msp-companies");

  // A narrow screen: the table becomes labelled rows.
  const narrow = await newPage(browser, { width: 390, height: 844 });
  await login(narrow, server, alice);
  await narrow.goto(`${server.url}/console/msp/imports/${wizardId}/companies`);
  await narrow.locator("#msp-companies").waitFor();
  await shot(narrow, "60-msp-narrow");
  assert.deepEqual(narrow.errors, []);
  await narrow.context().close();

  // The other tab: mapped before, not found with this filter; read-only.
  await notTab.click();
  await A.waitForURL(/\/companies\/not-in-psa$/);
  const gone = A.locator("tr", { hasText: co.gone.name });
  assert.equal(await gone.locator(".badge").innerText(), "Mapped");
  await A.getByText("If a company needs to be removed this is done outside of the import process.").waitFor();
  assert.equal(await A.getByRole("checkbox").count(), 0);
  await shot(A, "53-msp-not-in-psa");
  await A.getByRole("link", { name: new RegExp(`^Companies in ${PSA_NAME}`) }).click();
  await A.locator("#msp-companies").waitFor();

  // Nothing selected: refused next to the list, nothing saved.
  await A.getByLabel("Select all companies").uncheck();
  const refused = A.waitForResponse((r) => r.url().endsWith("/companies") && r.request().method() === "POST");
  await A.getByRole("button", { name: "Continue" }).click();
  assert.equal((await refused).status(), 422);
  assert.equal(await A.locator("#f-import-error").innerText(), "Select at least one company to import.");
  const lists = must(await api(server, "GET", `/msp/imports/${wizardId}/companies`), "lists").data;
  assert.ok(lists.companies_in_psa.every((r) => r.choice.import), "the selection is unchanged");

  await A.getByLabel("Select all companies").check();
  for (const x of co.extra) await A.getByLabel(`Import ${x.name}`, { exact: true }).uncheck();
  await A.getByRole("button", { name: "Continue" }).click();
  await A.waitForURL(/\/choices$/);
  assert.deepEqual(A.errors, []);
  A.errors.length = 0;
});

test("step 3: Manage → Company details maps a company to an existing managed company; bad choices are refused", async () => {
  await A.getByRole("heading", { name: "Companies with active PSA integration", level: 1 }).waitFor();
  const row = (c) => A.locator("#msp-choices tbody tr", { hasText: c.name });
  const action = async (c) => (await row(c).locator("td").nth(2).innerText()).trim();
  assert.equal(await action(co.mapTo), "Create a new managed company");
  assert.equal(await action(co.create), "Create a new managed company");
  assert.equal(await action(co.dup), `Map to ${co.dup.name}`);
  assert.match(await action(co.mapped), new RegExp(`^Map to ${co.mapped.name}`));
  assert.equal(await A.locator("#msp-choices tbody tr").count(), 4);

  const dialog = A.locator("dialog#msp-dialog");
  await row(co.mapTo).getByRole("button", { name: "Manage" }).click();
  await dialog.getByRole("heading", { name: "Company details" }).waitFor();
  await settled(A);
  assert.ok(await dialog.evaluate((d) => d.open));

  // Save with nothing chosen: the error next to the field, 422, nothing saved.
  let posted = A.waitForResponse((r) => r.request().method() === "POST" && r.url().includes("/choices/"));
  await dialog.getByRole("button", { name: "Save" }).click();
  assert.equal((await posted).status(), 422);
  assert.equal(
    await dialog.locator("#f-choice-error").innerText(),
    "Choose what to do with this company: select the managed company to map to, or another action. Nothing was saved.",
  );
  await settled(A);

  // Search as you type, select, Save.
  await search(dialog.getByLabel("Search managed companies"), "harborview");
  const hit = dialog.getByLabel(new RegExp(HARBOR));
  await hit.waitFor();
  await hit.check();
  await shot(A, "54-msp-manage-dialog");
  await dialog.getByRole("button", { name: "Save" }).click();
  await loaded(A, `Saved the company details of ${co.mapTo.name}.`);
  assert.equal(await action(co.mapTo), `Map to ${HARBOR}`);
  let lists = must(await api(server, "GET", `/msp/imports/${wizardId}/companies`), "lists").data;
  const choiceOf = (l, c) => l.companies_in_psa.find((r) => r.psa_company_id === c.psa_company_id).choice;
  assert.deepEqual(choiceOf(lists, co.mapTo), { import: true, action: "map", managed_company_id: String(pre.harbor.id) });

  // A managed company another PSA company is mapped to: refused next to the field.
  await row(co.mapTo).getByRole("button", { name: "Manage" }).click();
  await dialog.getByRole("heading", { name: "Company details" }).waitFor();
  await settled(A);
  await search(dialog.getByLabel("Search managed companies"), co.mapped.name);
  const taken = dialog.getByLabel(new RegExp(`${co.mapped.name}.*already mapped to PSA company ${co.mapped.psa_company_id}`));
  await taken.waitFor();
  await taken.check();
  posted = A.waitForResponse((r) => r.request().method() === "POST" && r.url().includes("/choices/"));
  await dialog.getByRole("button", { name: "Save" }).click();
  assert.equal((await posted).status(), 422);
  assert.match(
    await dialog.locator("#f-choice-error").innerText(),
    /^Two PSA companies cannot be mapped to one managed company/,
  );
  assert.equal(await dialog.getByLabel("Search managed companies").inputValue(), co.mapped.name, "the input is kept");
  lists = must(await api(server, "GET", `/msp/imports/${wizardId}/companies`), "lists").data;
  assert.equal(choiceOf(lists, co.mapTo).managed_company_id, String(pre.harbor.id), "nothing was saved");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await until("the dialog to close", async () => !(await dialog.evaluate((d) => d.open)));

  await A.getByRole("button", { name: "Import and Map" }).click();
  await A.waitForURL(/\/users\??$/);
  await A.getByRole("heading", { name: "Companies to Import and Map", level: 1 }).waitFor();
  await shot(A, "55-msp-import-and-map");
  assert.deepEqual(A.errors, []);
  A.errors.length = 0;
});

test("step 4: Manage users selects contacts and maps one to an existing LastPass user", async () => {
  const dialog = A.locator("dialog#msp-dialog");
  const row = (c) => A.locator("#msp-users tbody tr", { hasText: c.name });
  const contactsOf = async (c) =>
    must(await api(server, "GET", `/msp/imports/${wizardId}/companies/${c.psa_company_id}/users`), "users").data;
  const box = (email) => dialog.getByLabel(`Grant access to ${email}`, { exact: true });

  // The Mapped company: the e-mails imported before are selected; untick one, tick another.
  const mapped = activeEmails((await contactsOf(co.mapped)).contacts);
  await row(co.mapped).getByRole("button", { name: "Manage users" }).click();
  await dialog.getByRole("heading", { name: "Manage users" }).waitFor();
  await settled(A);
  await dialog.getByText("Select which emails to grant access").waitFor();
  for (const e of mapped) assert.equal(await box(e).isChecked(), pre.emails.includes(e), e);
  picked.mappedNew = mapped.find((e) => !pre.emails.includes(e));
  await box(pre.emails[1]).uncheck();
  await box(picked.mappedNew).check();
  await shot(A, "56-msp-manage-users");
  await dialog.getByRole("button", { name: "Save" }).click();
  await loaded(A, `Saved the users of ${co.mapped.name}: 2 e-mails selected.`);

  // The company mapped to Harborview: two contacts, one of them mapped to its existing user.
  const frontier = activeEmails((await contactsOf(co.mapTo)).contacts);
  [picked.mapUser, picked.mapToNew] = frontier;
  await row(co.mapTo).getByRole("button", { name: "Manage users" }).click();
  await dialog.getByRole("heading", { name: "Manage users" }).waitFor();
  await settled(A);
  for (const e of frontier) assert.equal(await box(e).isChecked(), false, `${e}: nothing imported before`);
  await box(picked.mapUser).check();
  await box(picked.mapToNew).check();
  await dialog.getByRole("button", { name: `User details for ${picked.mapUser}` }).click();
  await dialog.getByRole("heading", { name: "User details" }).waitFor();
  await settled(A);
  // Save with nothing chosen: refused next to the field.
  let posted = A.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/details"));
  await dialog.getByRole("button", { name: "Save" }).click();
  assert.equal((await posted).status(), 422);
  assert.equal(
    await dialog.locator("#f-target-error").innerText(),
    "Choose what to do with this user: select the user to map to, or another action. Nothing was saved.",
  );
  await settled(A);
  await search(dialog.getByLabel("Search users"), "okafor");
  const user = dialog.getByLabel(new RegExp(HARBOR_USER.email.replace(".", "\\.")));
  await user.waitFor();
  await user.check();
  await shot(A, "56-msp-user-details");
  await dialog.getByRole("button", { name: "Save" }).click();
  await dialog.getByText(`Saved the user details: ${picked.mapUser} will be mapped to the LastPass user ${pre.harborUser.id}.`).waitFor();
  await settled(A);
  // Back in Manage users: both ticks were kept, the mapping shown.
  assert.ok(await box(picked.mapUser).isChecked());
  assert.ok(await box(picked.mapToNew).isChecked());
  await dialog.locator("tr", { hasText: picked.mapUser }).getByText(`Map to ${HARBOR_USER.name} (${HARBOR_USER.email})`).waitFor();
  await dialog.getByRole("button", { name: "Save" }).click();
  await loaded(A, `Saved the users of ${co.mapTo.name}: 2 e-mails selected.`);

  // The potential duplicate and the new company: one contact each. The new company's contacts
  // cannot be mapped (it has no users yet).
  for (const [c, key] of [[co.dup, "dupEmail"], [co.create, "createEmail"]]) {
    picked[key] = activeEmails((await contactsOf(c)).contacts)[0];
    await row(c).getByRole("button", { name: "Manage users" }).click();
    await dialog.getByRole("heading", { name: "Manage users" }).waitFor();
    await settled(A);
    await dialog.getByText(c.name, { exact: true }).waitFor();
    await box(picked[key]).check();
    if (c === co.create) {
      assert.equal(await dialog.getByRole("button", { name: /^User details for/ }).count(), 0);
      await dialog.getByText("gets a new managed company").waitFor();
    }
    await dialog.getByRole("button", { name: "Save" }).click();
    await loaded(A, `Saved the users of ${c.name}: 1 e-mail selected.`);
  }
  assert.equal((await row(co.mapped).locator("td").nth(2).innerText()).split(" of ")[0], "2");
  await A.getByText("4 companies and 6 e-mails will be imported.").waitFor();
  // The same dialog on a narrow screen.
  const narrow = await newPage(browser, { width: 390, height: 844 });
  await login(narrow, server, alice);
  await narrow.goto(`${server.url}/console/msp/imports/${wizardId}/users`);
  await narrow.locator("#msp-users tbody tr", { hasText: co.mapTo.name }).getByRole("button", { name: "Manage users" }).click();
  await narrow.locator("dialog#msp-dialog").getByRole("heading", { name: "Manage users" }).waitFor();
  await shot(narrow, "60-msp-narrow-manage-users");
  assert.deepEqual(narrow.errors, []);
  await narrow.context().close();

  const choice = (await contactsOf(co.mapTo)).choice;
  assert.deepEqual(choice.map_users, { [picked.mapUser]: String(pre.harborUser.id) });
  assert.deepEqual(A.errors, []);
  A.errors.length = 0;
});

test("another browser session sees the lock and can change nothing", async () => {
  // Alice's own open import is offered to resume.
  await A.goto(server.url + "/console/msp");
  const mine = A.locator("tr", { hasText: PSA });
  assert.equal(await mine.locator(".badge").innerText(), "Your import is open");
  await mine.getByRole("link", { name: `Resume the import from ${PSA_NAME}` }).click();
  await A.waitForURL(new RegExp(`/imports/${wizardId}/companies$`));
  await A.goto(`${server.url}/console/msp/imports/${wizardId}/users`);
  await A.getByRole("heading", { name: "Companies to Import and Map", level: 1 }).waitFor();

  const B = await newPage(browser);
  await login(B, server, bob);
  await B.goto(server.url + "/console/msp");
  const row = B.locator("tr", { hasText: PSA });
  assert.equal(await row.locator(".msp-locked").innerText(), LOCKED);
  await row.getByText(/console user alice holds the integration until/).waitFor();
  await shot(B, "59-msp-locked");

  // Opening the integration anyway: the message on the page, and Continue refused.
  await row.getByRole("link", { name: `Import from ${PSA_NAME}` }).click();
  await B.getByRole("heading", { name: `Import from ${PSA_NAME}` }).waitFor();
  assert.equal(await B.locator(".msp-locked").innerText(), LOCKED);
  await B.getByRole("group", { name: "Company types" }).getByLabel(TYPE.name, { exact: true }).check();
  const refused = B.waitForResponse((r) => r.request().method() === "POST" && r.url().includes("/console/msp/psa/"));
  await B.getByRole("button", { name: "Continue" }).click();
  assert.equal((await refused).status(), 409);
  const alert = B.locator("#msp-filters .alert.error");
  await alert.waitFor();
  assert.equal(await alert.locator("p").first().innerText(), LOCKED);
  await alert.getByText(/console user alice holds the integration until/).waitFor();
  await shot(B, "59-msp-locked-continue");
  const lock = must(await api(server, "GET", `/msp/integrations/${PSA}/lock`), "lock").data;
  assert.match(lock.holder, /console user alice/);

  // Alice's wizard, opened by Bob: read-only, and a forged Continue is refused.
  await B.goto(`${server.url}/console/msp/imports/${wizardId}/users`);
  assert.equal(await B.locator(".msp-locked").innerText(), LOCKED);
  assert.equal(await B.getByRole("button", { name: "Manage users" }).count(), 0);
  assert.equal(await B.getByRole("button", { name: "Continue" }).count(), 0);
  const forged = await B.evaluate(async (id) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`/console/msp/imports/${id}/apply`, { method: "POST", body: new URLSearchParams({ _csrf: csrf }) });
    return { status: r.status, text: await r.text() };
  }, wizardId);
  assert.equal(forged.status, 409);
  assert.ok(forged.text.includes(LOCKED));
  const w = must(await api(server, "GET", `/msp/imports/${wizardId}`), "wizard").data;
  assert.equal(w.run, null, "nothing ran");
  assert.deepEqual(B.errors, []);
  await B.context().close();
});

test("Continue: the progress, then the result page, checked against the MSP emulator", async () => {
  // New managed companies take a few seconds to be created, so the progress can be seen.
  const config = must(await sandbox(server, "GET", "/msp/config"), "msp config");
  must(await sandbox(server, "POST", "/msp/config", { complete_after_secs: 3 }), "slow creates");
  try {
    await A.getByRole("button", { name: "Continue" }).click();
    await A.waitForURL(/\/result$/);
    const progress = A.locator("#msp-progress");
    if (await progress.isVisible()) {
      assert.equal(await progress.getAttribute("aria-live"), "polite");
      await shot(A, "57-msp-progress");
    }
    await A.getByRole("heading", { name: "Import result", level: 1 }).waitFor({ timeout: 60000 });
  } finally {
    await sandbox(server, "POST", "/msp/config", { complete_after_secs: config.complete_after_secs ?? null });
  }
  const dd = async (label) => Number(await A.locator(`dt:text-is("${label}") + dd`).innerText());
  const shown = {
    users: await dd("Users imported"),
    added: await dd("Added as new users"),
    mappedUsers: await dd("Mapped to existing users"),
    kept: await dd("Imported before, kept"),
    companies: await dd("Companies imported"),
    created: await dd("New managed companies"),
    mapped: await dd("Mapped to existing managed companies"),
    keptCompanies: await dd("Mapped before, kept"),
  };
  // Users: the Mapped company keeps one and adds one, the Harborview one maps one and adds one,
  // the duplicate and the new company add one each. Companies: one new, two mapped, one kept.
  assert.deepEqual(shown, {
    users: 6, added: 4, mappedUsers: 1, kept: 1, companies: 4, created: 1, mapped: 2, keptCompanies: 1,
  });
  await A.getByText("You imported 6 users into 4 managed companies.").waitFor();
  await A.getByText("There were no errors in the importing process.").waitFor();
  await shot(A, "58-msp-result");
  const result = must(await api(server, "GET", `/msp/imports/${wizardId}/result`), "result").data;
  assert.equal(result.status, "succeeded");
  assert.equal(result.users_imported, shown.users);
  assert.equal(result.companies_imported, shown.companies);
  assert.deepEqual(result.progress, { done: result.progress.total, total: result.progress.total });

  // The emulator's own view.
  const emails = (c) => c.users.map((u) => u.email.toLowerCase());
  assert.equal((await msp.named(co.mapTo.name)).length, 0, "mapped to Harborview: no company of its own");
  const [harbor] = await msp.named(HARBOR);
  assert.deepEqual(emails(harbor).sort(), [HARBOR_USER.email, picked.mapToNew.toLowerCase()].sort(),
    "the mapped contact is the existing user; the other one was added");
  const dups = await msp.named(co.dup.name);
  assert.equal(dups.length, 1, "no duplicate company was created");
  assert.equal(dups[0].id, pre.dupManaged.id);
  assert.deepEqual(emails(dups[0]), [picked.dupEmail.toLowerCase()]);
  const created = await msp.named(co.create.name);
  assert.equal(created.length, 1);
  assert.deepEqual(emails(created[0]), [picked.createEmail.toLowerCase()]);
  const kept = await msp.named(co.mapped.name);
  assert.equal(kept.length, 1, "the Mapped company was kept, not created again");
  assert.deepEqual(
    emails(kept[0]).sort(),
    [...pre.emails, picked.mappedNew].map((e) => e.toLowerCase()).sort(),
    "the new contact was added; the unticked one is not removed (an import never removes)",
  );

  // Finish: the wizard ends and the integration is free.
  await A.getByRole("button", { name: "Finish" }).click();
  await A.waitForURL(/\/console\/msp$/);
  await A.getByText(`Finished the import from ${PSA_NAME}: the integration is free for other admins.`).waitFor();
  assert.equal(await A.locator("tr", { hasText: PSA }).locator(".badge").innerText(), "Free");
  assert.equal((await api(server, "GET", `/msp/imports/${wizardId}`)).status, 404);
  assert.deepEqual(A.errors, []);
});

test("after the first admin finished, the second one can start: Cancel import, then a run with a licence error", async () => {
  const B = await newPage(browser);
  await login(B, server, bob);
  const startImport = async () => {
    await B.goto(server.url + "/console/msp");
    await B.locator("tr", { hasText: PSA }).getByRole("link", { name: `Import from ${PSA_NAME}` }).click();
    await B.getByRole("group", { name: "Company types" }).getByLabel(TYPE.name, { exact: true }).check();
    await B.getByRole("group", { name: "Statuses" }).getByLabel(STATUS.name, { exact: true }).check();
    await B.getByRole("button", { name: "Continue" }).click();
    await B.waitForURL(/\/companies$/, { timeout: 30000 });
  };
  await startImport();
  // Incremental: every company of the first import is Mapped now.
  for (const c of [co.mapped, co.mapTo, co.dup, co.create]) {
    assert.equal(await B.locator("#msp-companies tr", { hasText: c.name }).locator(".badge").innerText(), "Mapped", c.name);
  }
  const lock = must(await api(server, "GET", `/msp/integrations/${PSA}/lock`), "lock").data;
  assert.match(lock.holder, /console user bob/);
  await B.getByRole("button", { name: "Cancel import" }).click();
  await B.waitForURL(/\/console\/msp$/);
  await B.getByText(`Cancelled the import from ${PSA_NAME}: nothing was imported`).waitFor();
  const free = must(await api(server, "GET", `/msp/integrations/${PSA}/lock`), "lock").data;
  assert.equal(free.locked, false);

  // Again, to the end: one more contact for the company mapped to Harborview, whose licences
  // are all used, while the MSP's pool is empty.
  await startImport();
  await B.getByRole("button", { name: "Continue" }).click();
  await B.waitForURL(/\/choices$/);
  await B.getByRole("button", { name: "Import and Map" }).click();
  await B.waitForURL(/\/users\??$/);
  const users = must(
    await api(server, "GET", `/msp/imports/${B.url().split("/imports/")[1].split("/")[0]}/companies/${co.mapTo.psa_company_id}/users`),
    "users",
  ).data;
  const more = activeEmails(users.contacts).find((e) => e !== picked.mapUser && e !== picked.mapToNew);
  const dialog = B.locator("dialog#msp-dialog");
  await B.locator("#msp-users tbody tr", { hasText: co.mapTo.name }).getByRole("button", { name: "Manage users" }).click();
  await dialog.getByRole("heading", { name: "Manage users" }).waitFor();
  await settled(B);
  // Imported before: selected by default.
  assert.ok(await dialog.getByLabel(`Grant access to ${picked.mapToNew}`, { exact: true }).isChecked());
  await dialog.getByLabel(`Grant access to ${more}`, { exact: true }).check();
  await dialog.getByRole("button", { name: "Save" }).click();
  await loaded(B, `Saved the users of ${co.mapTo.name}: 3 e-mails selected.`);
  const pool = must(await sandbox(server, "GET", "/msp/licenses"), "licences");
  must(await sandbox(server, "POST", "/msp/licenses", { total: 0 }), "no licences");
  try {
    await B.getByRole("button", { name: "Continue" }).click();
    await B.getByRole("heading", { name: "Import result", level: 1 }).waitFor({ timeout: 60000 });
  } finally {
    must(await sandbox(server, "POST", "/msp/licenses", { total: pool.total }), "licences back");
  }
  await B.getByText("The import finished, but some items failed: see the errors below.").waitFor();
  const dd = async (label) => Number(await B.locator(`dt:text-is("${label}") + dd`).first().innerText());
  assert.equal(await dd("Failed"), 1, "one user failed");
  assert.equal(await dd("Imported before, kept"), 6);
  assert.equal(await dd("Users imported"), 6);
  const err = B.locator("#msp-errors tbody tr");
  assert.equal(await err.count(), 1);
  assert.equal(await err.locator("td").nth(0).innerText(), "You don't seem to have enough available licenses");
  assert.equal(await err.locator("td").nth(1).innerText(), co.mapTo.name);
  assert.equal((await err.locator("td").nth(2).innerText()).toLowerCase(), more.toLowerCase());
  await shot(B, "58-msp-result-errors");
  const [harbor] = await msp.named(HARBOR);
  assert.ok(!harbor.users.some((u) => u.email.toLowerCase() === more.toLowerCase()), "the refused user is not there");
  await B.getByRole("button", { name: "Finish" }).click();
  await B.waitForURL(/\/console\/msp$/);
  assert.equal((await api(server, "GET", `/msp/integrations/${PSA}/lock`)).body.data.locked, false);
  assert.deepEqual(B.errors, []);
  await B.context().close();
});
