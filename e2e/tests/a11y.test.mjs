// Accessibility of every console page, checked in the browser: labels and names, one h1 and
// no skipped heading level, landmarks, unique ids, keyboard entry (the skip link), and the
// WCAG AA contrast of every visible text against its real background.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServe, launch, newPage, login, addConsoleUser } from "../lib/harness.mjs";

let server, browser, page;
before(async () => {
  server = await startServe();
  browser = await launch();
  page = await newPage(browser);
  const admin = addConsoleUser(server, "a11y");
  await login(page, server, admin);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Everything the page breaks, as a list of strings (empty: fine). */
async function audit() {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none" && !el.closest("dialog:not([open])");
    };
    const describe = (el) => `<${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.name ? ` name=${el.name}` : ""}>`;
    if (!document.documentElement.lang) problems.push("html has no lang");
    if (!document.querySelector("main")) problems.push("no <main> landmark");
    if (!document.title.trim()) problems.push("no <title>");
    // Names.
    for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
      const named = (el.labels && el.labels.length > 0 && [...el.labels].some((l) => l.textContent.trim())) ||
        el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.title;
      if (!named) problems.push(`unlabelled ${describe(el)}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (!(el.textContent.trim() || el.getAttribute("aria-label") || el.title)) problems.push(`nameless ${describe(el)}`);
    }
    // Headings.
    const hs = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].filter((h) => !h.closest("dialog"));
    if (hs.filter((h) => h.tagName === "H1").length !== 1) problems.push(`${hs.filter((h) => h.tagName === "H1").length} h1 elements`);
    let last = 0;
    for (const h of hs) {
      const level = Number(h.tagName[1]);
      if (last && level > last + 1) problems.push(`heading level skipped: h${last} → ${describe(h)} "${h.textContent.trim()}"`);
      last = level;
    }
    // Unique ids (labels and aria references depend on them).
    const seen = new Map();
    for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
    for (const [id, n] of seen) if (n > 1) problems.push(`id "${id}" used ${n} times`);
    // Tables: header cells.
    for (const t of document.querySelectorAll("table")) {
      if (!t.querySelector("th")) problems.push(`table without header cells ${describe(t)}`);
    }
    // Contrast (WCAG 2.1 AA): 4.5:1, or 3:1 for large text (24px, or 18.66px bold).
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    let checked = 0;
    for (const el of document.querySelectorAll("body *")) {
      if (el.closest("svg") || !visible(el)) continue;
      if (el.matches(":disabled, [aria-disabled=true]")) continue; // WCAG exempts inactive controls
      const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
      if (!text) continue;
      const cs = getComputedStyle(el);
      const fg = parse(cs.color);
      if (!fg) continue;
      const bg = background(el);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      checked++;
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}:1 for "${text.slice(0, 40)}" ${describe(el)}`);
    }
    if (checked === 0) problems.push("no text checked");
    return problems;
  });
}

async function keyboardEntry() {
  // The first Tab reaches the skip link, which moves focus to the content.
  await page.locator("body").focus();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim());
  assert.equal(first, "Skip to content");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash === "#main");
}

const pages = [
  ["Connections", "/console/connections"],
  ["Directory users", "/console/directory"],
  ["Directory groups", "/console/directory/groups"],
  ["Shared folders", "/console/directory/folders"],
  ["User detail", null],
  ["Events", "/console/events"],
  ["Webhooks", "/console/webhooks"],
  ["PSA import", "/console/msp"],
  ["PSA import filters", "/console/msp/psa/sandbox-connectwise"],
];

for (const [name, path] of pages) {
  test(`${name}: names, headings, landmarks, ids, contrast, keyboard entry`, async () => {
    if (path) {
      await page.goto(server.url + path);
    } else {
      await page.goto(server.url + "/console/directory");
      await page.locator("table a[href*='/console/directory/users/']").first().click();
    }
    await page.locator("main h1").first().waitFor();
    assert.deepEqual(await audit(), [], `${name} (${page.url()})`);
    await keyboardEntry();
    assert.deepEqual(page.errors, []);
  });
}

test("the login page, and a refused form's errors are announced and linked to their fields", async () => {
  const anon = await newPage(browser);
  await anon.goto(server.url + "/console/login");
  await anon.getByLabel("Username", { exact: true }).fill("a11y");
  await anon.getByLabel("Password", { exact: true }).fill("wrong-password-here");
  await anon.getByRole("button", { name: "Sign in", exact: true }).click();
  const alert = anon.getByRole("alert");
  await alert.waitFor();
  const input = anon.getByLabel("Password", { exact: true });
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  const described = await input.getAttribute("aria-describedby");
  assert.ok(described && (await anon.locator(`#${described.split(" ")[0]}`).innerText()).length > 0);
  // The summary links to the field.
  await alert.getByRole("link").first().click();
  assert.equal(await anon.evaluate(() => location.hash), "#f-password");
  await anon.context().close();
});

test("the audit itself catches what it looks for", async () => {
  await page.goto(server.url + "/console/connections");
  await page.evaluate(() => {
    const m = document.querySelector("main");
    m.insertAdjacentHTML(
      "beforeend",
      '<input id="x-unlabelled"><button></button><h6>skipped level</h6><p class="muted" id="dup">pale</p><span id="dup">x</span>',
    );
  });
  // A light grey on white (about 1.6:1), set through the CSSOM (the CSP forbids style markup).
  await page.evaluate(() => { document.querySelector("p#dup").style.setProperty("color", "#cccccc"); });
  const problems = (await audit()).join("\n");
  assert.match(problems, /unlabelled <input#x-unlabelled>/);
  assert.match(problems, /nameless <button>/);
  assert.match(problems, /heading level skipped: h[1-4] → <h6>/);
  assert.match(problems, /id "dup" used 2 times/);
  assert.match(problems, /contrast 1\.\d+:1 for "pale"/);
});
