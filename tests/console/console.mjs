// Drives the console page in headless Chromium for host/tests/console.rs. One phase per
// run, described by JSON on stdin: {phase, url, key, out, chromium, expect}. A phase
// does what an operator would (keyboard first), checks what the page shows, saves
// screenshots under `out`, and exits non-zero with the reason when something is wrong.
// Every phase also fails on a console error it did not expect, a request to another
// origin, the key in a URL, or the key sent anywhere but the organization's routes.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const input = JSON.parse(readFileSync(0, "utf8"));
const { phase, url, key, out } = input;
const want = input.expect || {};
const origin = new URL(url).origin;
const base = new URL(url).pathname.replace(/\/_console$/, "");

// A stuck browser must not hang the Rust test.
const watchdog = setTimeout(() => {
  console.error(`${phase}: still running after 45 s`);
  process.exit(3);
}, 45_000);

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const profile = mkdtempSync(join(tmpdir(), "scim-edge-console-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: input.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1100, height: 900 },
  timeout: 20_000,
});
context.setDefaultTimeout(10_000);
const page = context.pages()[0] || (await context.newPage());

// What the page must never do. Console errors are allowed only while `allowed` says so
// (a 401 answer is logged by Chromium itself as a failed resource).
const faults = [];
let allowed = null;
page.on("console", (m) => {
  if (m.type() !== "error") return;
  if (allowed && allowed.test(m.text())) return;
  faults.push(`console error: ${m.text()}`);
});
page.on("pageerror", (e) => faults.push(`uncaught: ${e.message}`));
context.on("request", (r) => {
  const u = new URL(r.url());
  if (u.origin !== origin) faults.push(`request to another origin: ${r.url()}`);
  if (key && r.url().includes(key)) faults.push(`the key in a URL: ${r.url()}`);
  const auth = r.headers().authorization;
  if (auth && !(u.origin === origin && u.pathname.startsWith(base + "/"))) {
    faults.push(`authorization sent to ${r.url()}`);
  }
});

let shot = 0;
async function screenshot(name) {
  shot += 1;
  await page.screenshot({ path: join(out, `${phase}-${shot}-${name}.png`), fullPage: true });
}

const loads = () => page.evaluate(() => Number(document.body.dataset.loads || 0));
const text = (sel) => page.locator(sel).innerText();
const fact = (name) => text(`[data-fact="${name}"]`);
const storage = () =>
  page.evaluate(() => ({
    session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
    local: localStorage.length,
    cookie: document.cookie,
  }));

async function waitLoadsAfter(n) {
  await page.waitForFunction((n) => Number(document.body.dataset.loads || 0) > n, n);
}

// Tabs from wherever focus is to the element, as a keyboard user would, and presses
// Enter on it; fails if Tab never gets there.
async function press(selector) {
  for (let i = 0; i < 80; i++) {
    if (await page.evaluate((s) => document.activeElement === document.querySelector(s), selector)) {
      const before = await loads();
      await page.keyboard.press("Enter");
      await waitLoadsAfter(before);
      return;
    }
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reaches ${selector}`);
}

// Opens the page and gives it a key with the keyboard alone: the key field has focus.
async function open(k) {
  await page.goto(url);
  await page.waitForSelector("body[data-state=login]");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === "key", `the key field has no focus on load (${focused})`);
  await page.keyboard.type(k);
  const before = await loads();
  await page.keyboard.press("Enter");
  await waitLoadsAfter(before);
  check(!(await page.inputValue("#key")), "the key stays in the field after it was sent");
}

async function openConsole() {
  await open(key);
  const state = await page.evaluate(() => document.body.dataset.state);
  check(state === "ready", `the console did not open: ${state}: ${await text("body")}`);
  const s = await storage();
  check(s.session.length === 1 && s.session[0] === key, "the key is not (only) in sessionStorage");
  check(s.local === 0 && s.cookie === "", "something is in localStorage or a cookie");
}

async function checkFacts(facts) {
  for (const [name, value] of Object.entries(facts)) {
    const got = await fact(name);
    check(got.includes(String(value)), `${name}: wanted ${value}, the page shows '${got}'`);
  }
}

async function listIncludes(sel, items) {
  const got = await text(sel);
  for (const i of items) check(got.includes(i), `${sel}: wanted '${i}', the page shows '${got}'`);
}

const phases = {
  // The shell: no errors, nothing foreign, a labelled password field; a wrong key shows
  // the 401's detail; an organization without a vault says so.
  async shell() {
    await page.goto(url);
    await page.waitForSelector("body[data-state=login]");
    check(await page.locator("#loading").isHidden(), "the script did not run");
    const field = await page.evaluate(() => {
      const k = document.getElementById("key");
      return { type: k.type, label: k.labels.length ? k.labels[0].textContent.trim() : "" };
    });
    check(field.type === "password" && field.label !== "", `the key field: ${JSON.stringify(field)}`);
    const styled = await page.evaluate(() => getComputedStyle(document.getElementById("login")).borderRadius);
    check(styled === "8px", `the stylesheet did not apply (${styled})`);
    await screenshot("shell");

    allowed = /status of 401/;
    await open("not-the-key");
    allowed = null;
    check((await page.evaluate(() => document.body.dataset.state)) === "login", "a wrong key left the key form");
    const error = await text("#error");
    check(error.includes(want.detail), `the 401's detail is not shown: '${error}'`);
    check((await storage()).session.length === 0, "a refused key stays in sessionStorage");
    check((await text("#summary")) === "", "data is shown after a 401");
    await screenshot("wrong-key");

    await openConsole();
    check(await page.locator("#no-vault").isVisible(), "no word that there is no vault");
    check(await page.locator("#vault").isHidden(), "vault sections without a vault");
    await checkFacts(want.facts);
    await screenshot("no-vault");
  },

  // The counts, the vault's state and the confirm queue; then at phone width.
  async overview() {
    await openConsole();
    await checkFacts(want.facts);
    check(!(await fact("lastSync")).includes("never"), "no last sync");
    await listIncludes("#statuses", want.statuses);
    await listIncludes("#queue", want.queue);
    await listIncludes("#parked", ["Nothing is parked."]);
    await screenshot("desktop");
    await page.setViewportSize({ width: 375, height: 812 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 0, `the page is ${wide}px wider than a phone`);
    await screenshot("phone");
  },

  // A change waiting for a sync goes out with "sync now".
  async sync() {
    await openConsole();
    await checkFacts({ backlog: "1 waiting" });
    await press("#sync");
    await listIncludes("#sync-out", ["Sent 1, invited 1; 0 waiting"]);
    await checkFacts({ backlog: "0 waiting" });
    await screenshot("synced");
  },

  // "Reconcile now" reports what was changed by hand and heals it: the next reconcile
  // finds nothing.
  async drift() {
    await openConsole();
    await listIncludes("#drift", ["No drift found by the last reconcile."]);
    await press("#reconcile");
    await listIncludes("#drift", [want.drift]);
    await listIncludes("#reconcile-out", ["Drift: " + want.drift]);
    await listIncludes("#problems", [want.drift]);
    await screenshot("found");
    await press("#reconcile");
    await listIncludes("#drift", ["No drift found by the last reconcile."]);
    await screenshot("healed");
  },

  // A parked entry shows the vault's words; retried while the vault still refuses, it
  // stays parked, with the refusal in the answer.
  async parked() {
    await openConsole();
    const button = `#parked button[data-entry="${want.entry}"]`;
    await listIncludes("#parked", [want.name, want.error]);
    await screenshot("parked");
    await press(button);
    await listIncludes("#retry-out", ["Retried", want.error]);
    await listIncludes("#parked", [want.error]);
    check(await page.locator(button).isVisible(), "the entry left the parked list");
    await screenshot("refused-again");
  },

  // Retried once the vault takes it, it leaves the parked list; then the key is
  // forgotten.
  async retry() {
    await openConsole();
    await press(`#parked button[data-entry="${want.entry}"]`);
    await listIncludes("#retry-out", ["Retried"]);
    await listIncludes("#parked", ["Nothing is parked."]);
    await screenshot("retried");
    await page.focus("#forget");
    await page.keyboard.press("Enter");
    await page.waitForSelector("body[data-state=login]");
    const s = await storage();
    check(s.session.length === 0 && s.local === 0 && s.cookie === "", `the key is still stored: ${JSON.stringify(s)}`);
    check((await text("#summary")) === "" && (await text("#parked")) === "", "data stays on the page after forget");
    await screenshot("forgotten");
  },

  // A vault that fails holds delivery back: the pause shows with its reason.
  async paused() {
    await openConsole();
    await checkFacts({ pause: "until", backlog: "1 waiting" });
    await listIncludes('[data-fact="pause"]', [want.reason]);
    await screenshot("paused");
  },
};

let failed = null;
try {
  check(phases[phase], `no phase '${phase}'`);
  await phases[phase]();
  check(faults.length === 0, faults.join("\n"));
} catch (e) {
  failed = e;
  await page.screenshot({ path: join(out, `${phase}-failed.png`), fullPage: true }).catch(() => {});
}
await context.close();
rmSync(profile, { recursive: true, force: true });
clearTimeout(watchdog);
if (failed) {
  console.error(`${phase}: ${failed.message}`);
  process.exit(1);
}
console.log(`${phase}: ok (${shot} screenshot(s))`);
