// Test harness for the console's browser tests: starts `lpbridge serve` on the embedded sandbox
// (SQLite in a fresh temporary directory, port chosen by the OS), launches Debian's Chromium
// through playwright-core, signs in, and saves screenshots. Talks to 127.0.0.1 only.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR || join(repo, "target");
export const bin = process.env.LPBRIDGE_BIN || join(targetDir, "debug", "lpbridge");
export const shotsDir = process.env.E2E_SCREENSHOTS || join(targetDir, "e2e-screenshots");
export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Polls `fn` until it returns a truthy value or `ms` pass (never a blind sleep). */
export async function until(what, fn, ms = 20000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * Starts `lpbridge serve` on the sandbox. Resolves with
 * `{url, apiKey, sandbox: {endpoint, control}, dataDir, stop(), lpbridge(args, stdin)}`.
 */
export async function startServe({ users = 60, args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "lpbridge-e2e-"));
  const child = spawn(
    bin,
    ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--sandbox-users", String(users), ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" } },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 200000) stderr = stderr.slice(-100000);
  });
  const banner = await new Promise((res, rej) => {
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => rej(new Error(`lpbridge serve did not start in 60 s:\n${stderr}`)), 60000);
    rl.once("line", (line) => {
      clearTimeout(timer);
      try {
        res(JSON.parse(line));
      } catch (e) {
        rej(new Error(`unexpected first line from lpbridge serve: ${line}\n${stderr}`));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`lpbridge serve exited with ${code}:\n${stderr}`));
    });
  });
  const control = banner.sandbox.control;
  const server = {
    url: banner.url,
    apiKey: banner.api_key,
    sandbox: { endpoint: banner.sandbox.endpoint, control },
    dataDir,
    stderr: () => stderr,
    /** Runs the lpbridge CLI on the same data directory. */
    lpbridge(cliArgs, input) {
      const r = spawnSync(bin, ["--data-dir", dataDir, ...cliArgs], { input, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`lpbridge ${cliArgs.join(" ")} failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A console user made with the CLI (`lpbridge console user add --password-stdin`). */
export function addConsoleUser(server, name, password = `${name}-correct-horse-battery`) {
  server.lpbridge(["console", "user", "add", name, "--password-stdin"], password);
  return { name, password };
}

/** JSON API call with the bootstrap key. */
export async function api(server, method, path, body) {
  const r = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, body: json };
}

/** The sandbox control API (`/_sandbox/...`): the emulator's own view of its state. */
export async function sandbox(server, method, path, body) {
  const r = await fetch(server.sandbox.control + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Headless Debian Chromium with the flags this machine's closed network needs. */
export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** A fresh browser context (its own cookies: another browser session) and page. */
export async function newPage(browser, { width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  // Pages must not fail in the console: a CSP violation, a script error or a missing resource
  // fails the test.
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => {
    // A refused form answers 422 (or 409 for a lock) on purpose, and Chromium logs every 4xx
    // page load as an error: those two are the console's normal answers, not failures.
    if (m.type() === "error" && !/status of (422|409) /.test(m.text())) page.errors.push(m.text());
  });
  page.on("dialog", (d) => d.accept());
  return page;
}

/** Signs in with a console user (`{name, password}`) or an API key (`{apiKey}`). */
export async function login(page, server, who) {
  await page.goto(server.url + "/");
  if (who.apiKey) {
    await page.getByLabel("API key", { exact: true }).fill(who.apiKey);
    await page.getByRole("button", { name: "Sign in with API key" }).click();
  } else {
    await page.getByLabel("Username", { exact: true }).fill(who.name);
    await page.getByLabel("Password", { exact: true }).fill(who.password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
  }
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** Saves a full-page screenshot as `<shotsDir>/<name>.png`. */
export async function shot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  const path = join(shotsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
