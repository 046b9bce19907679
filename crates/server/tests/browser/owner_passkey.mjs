// The first owner, created with `mamori admin create`, opens the address
// it printed, signs in with the one-time password, chooses a password,
// registers a passkey (a virtual authenticator), keeps the recovery codes,
// signs out, and signs in again with the password and the passkey.
import { check, env, expect, open, path, scenario, virtualAuthenticator } from "./lib.mjs";

await scenario("owner-passkey", async (browser, name) => {
  const t = await open(browser, env("MAMORI_BASE"), name);
  const { page } = t;
  await virtualAuthenticator(t);
  const user = env("MAMORI_NAME");
  const password = env("MAMORI_NEW_PASSWORD");

  await page.goto(env("MAMORI_PRINTED_ADDRESS"));
  expect(path(t) === "/console/sign-in", `signed out, the console sends to sign-in, not ${path(t)}`);
  await check(t, "sign-in");
  await page.fill("#name", user);
  await page.fill("#password", env("MAMORI_ONE_TIME_PASSWORD"));
  await page.click("main form button[type=submit]");

  expect(path(t) === "/console/setup", `after the one-time password: ${path(t)}`);
  await check(t, "setup-password");
  await page.fill("#current", env("MAMORI_ONE_TIME_PASSWORD"));
  await page.fill("#new", password);
  await page.fill("#repeat", password);
  await page.click("main form button[type=submit]");

  expect(path(t) === "/console/setup", `after the new password: ${path(t)}`);
  await page.waitForSelector("form[data-passkey=create]");
  await check(t, "setup-passkey");
  await Promise.all([page.waitForURL("**/console/setup/passkey"), page.click("form[data-passkey] button")]);
  const codes = await page.locator("#recovery-codes li").count();
  expect(codes === 10, `ten recovery codes shown, not ${codes}`);
  const download = await page.locator("a[download]").getAttribute("href");
  expect(download.startsWith("data:text/plain"), "the codes can be downloaded from the page itself");
  await check(t, "recovery-codes");

  await page.click("main a[href='/console/']");
  expect(path(t) === "/console/", `the console after setup: ${path(t)}`);
  const who = await page.textContent("#signed-in");
  expect(who.includes(user), `the overview names the owner: ${who}`);
  await check(t, "overview");

  await page.click("header form button[type=submit]");
  expect(path(t) === "/console/sign-in", `after signing out: ${path(t)}`);
  await page.goto(new URL("/console/", env("MAMORI_BASE")).href);
  expect(path(t) === "/console/sign-in", "signed out means signed out");

  await page.fill("#name", user);
  await page.fill("#password", password);
  await page.click("main form button[type=submit]");
  expect(path(t) === "/console/second-factor", `after the password: ${path(t)}`);
  await page.waitForSelector("form[data-passkey=get]");
  await check(t, "second-factor-passkey");
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/console/"),
    page.click("form[data-passkey] button"),
  ]);
  const again = await page.textContent("#signed-in");
  expect(again.includes(user), `signed in again with the passkey: ${again}`);

  // The owner's settings: the checklist of what a real device needs.
  await page.click("nav.areas a[href='/console/settings']");
  expect(
    (await page.getAttribute("#ready-push", "data-check")) === "fail",
    "no push certificate yet",
  );
  await check(t, "settings");

  // The accounts: the owner's own line.
  await page.click("nav.areas a[href='/console/admins']");
  const own = page.locator(`#admins tr[data-admin='${user}']`);
  expect((await own.count()) === 1, "the owner is listed");
  await check(t, "administrators");

  // My own factors and sessions.
  await page.click("header a[href='/console/account']");
  expect(path(t) === "/console/account", `my account: ${path(t)}`);
  await check(t, "account");
  // People imported from CSV (pasted or a file), and export requests.
  await page.goto(new URL("/console/people/import", env("MAMORI_BASE")).href);
  await page.waitForSelector("#import-file-form");
  await check(t, "people-import");
  await page.goto(new URL("/console/people/exports", env("MAMORI_BASE")).href);
  await check(t, "people-exports");
});
