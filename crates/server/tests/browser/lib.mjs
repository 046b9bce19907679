// What every browser scenario shares: Debian's Chromium started headless
// and cut off from everything but the server under test, a page that
// records Content-Security-Policy violations, script errors and requests
// to any other origin, and `check`, run on every page a scenario reaches:
// no violation, no other origin, no serious or critical axe-core finding,
// and a screenshot kept under the scenario's artifact folder.
import { chromium } from "playwright-core";
import { createHash, createHmac, X509Certificate } from "node:crypto";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
// Screenshots of one scenario, numbered in the order taken (across its
// browser contexts).
let shots = 0;
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/// The environment a scenario was started with (by e2e/browser.rs).
export function env(name) {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the server's TLS CA: Chromium
/// treats certificates under it as valid, as it would a CA the machine
/// trusts (a page with a certificate error may not use passkeys).
function spkiHash(pemPath) {
  const cert = new X509Certificate(readFileSync(pemPath));
  const spki = cert.publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--ignore-certificate-errors-spki-list=${spkiHash(env("MAMORI_CA_PEM"))}`,
      // Only loopback names resolve: nothing can leave this machine.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ],
  });
}

/// A new page (in a context of its own, so its own cookies) watched for
/// the problems `check` reports.
export async function open(browser, base, scenario) {
  const context = await browser.newContext({ locale: process.env.MAMORI_LOCALE || "ja-JP" });
  const page = await context.newPage();
  const origin = new URL(base).origin;
  const t = { page, context, base, scenario, problems: [] };
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) t.problems.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => t.problems.push(`script error: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol !== "data:" && u.origin !== origin) {
      t.problems.push(`request to another origin: ${r.url()}`);
    }
  });
  return t;
}

/// A virtual platform authenticator (Chromium's DevTools WebAuthn domain)
/// that verifies its user and answers without a prompt.
export async function virtualAuthenticator(t) {
  const cdp = await t.context.newCDPSession(t.page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/// The checks every page passes, then its screenshot (`name`).
export async function check(t, name) {
  const { page } = t;
  await page.waitForLoadState("load");
  const csp = await page.evaluate(() => window.__csp || []);
  for (const v of csp) t.problems.push(`CSP violation on ${name}: ${v}`);
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  for (const v of found) t.problems.push(`axe on ${name}: ${v}`);
  const dir = join(env("MAMORI_ARTIFACTS"), t.scenario);
  mkdirSync(dir, { recursive: true });
  shots += 1;
  const file = join(dir, `${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (t.problems.length) {
    throw new Error(`problems on ${name} (${page.url()}):\n  ${t.problems.join("\n  ")}`);
  }
}

/// The path of the page now shown.
export function path(t) {
  return new URL(t.page.url()).pathname;
}

/// Fails with `message` unless `cond`.
export function expect(cond, message) {
  if (!cond) throw new Error(message);
}

/// The 6-digit TOTP code of a base32 secret now (RFC 6238, SHA-1, 30 s).
export function totp(base32, at = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", Buffer.from(bytes)).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

/// Runs `body` with a launched browser; the process exits 0 only if it
/// returned.
export async function scenario(name, body) {
  rmSync(join(env("MAMORI_ARTIFACTS"), name), { recursive: true, force: true });
  const browser = await launch();
  try {
    await body(browser, name);
    console.log(`${name}: passed`);
  } catch (e) {
    console.error(`${name}: ${e.stack || e}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
